//! `cargo run --example platform`: see [`opkit_examples::platform`].

fn main() -> std::process::ExitCode {
    opkit_examples::platform::app().run()
}
