use opkit::prelude::*;
use opkit_envtest::TestEnv;
use {= crate =}::{= module =}::{= kind =};
use {= crate =}::{= module =}::{= webhook =}::{= handler =};

const SAMPLE: &str = include_str!("../../config/samples/{= sample_file =}");
