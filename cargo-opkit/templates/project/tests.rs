//! The operator against a real API server in the test process (opkit-envtest): one module per
//! controller.

// cargo-opkit: modules
