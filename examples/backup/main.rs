//! `cargo run --example backup`: see [`opkit_examples::backup`].

fn main() -> std::process::ExitCode {
    opkit_examples::backup::app().run()
}
