//! `cargo opkit`: see the crate documentation.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cargo_opkit::Cli::Opkit(opkit) = cargo_opkit::Cli::parse();
    let dir = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("error: cannot read the current directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    match opkit.run(&dir) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
