//! opkit
