//! `cargo opkit` as a user runs it, end to end.

mod guide;
mod project;
mod scaffold;
