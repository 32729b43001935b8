//! `cargo run --example webapp`: see [`opkit_examples::webapp`].

fn main() -> std::process::ExitCode {
    opkit_examples::webapp::app().run()
}
