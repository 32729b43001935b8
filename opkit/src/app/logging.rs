//! Log output of an operator binary: `tracing` to stderr, human or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::cli::LogFormat;

/// Installs the global subscriber (unless the embedding program installed one): `RUST_LOG`
/// filters, `default` otherwise. Colours only when stderr is a terminal, so a log redirected to
/// a file or a pipe holds no escape codes.
pub(crate) fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
