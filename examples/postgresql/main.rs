//! `cargo run --example postgresql`: see [`opkit_examples::postgresql`].

fn main() -> std::process::ExitCode {
    opkit_examples::postgresql::app().run()
}
