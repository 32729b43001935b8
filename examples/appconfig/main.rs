//! `cargo run --example appconfig`: see [`opkit_examples::appconfig`].

fn main() -> std::process::ExitCode {
    opkit_examples::appconfig::app().run()
}
