//! `cargo run` starts the operator on an embedded API server; `cargo run -- --help` lists the rest.

fn main() -> std::process::ExitCode {
    {= crate =}::app().run()
}
