//! `cargo run --example tenants`: see [`opkit_examples::tenants`].

fn main() -> std::process::ExitCode {
    opkit_examples::tenants::app().run()
}
