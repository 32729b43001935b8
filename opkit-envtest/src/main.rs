//! `opkit-envtest`: serves the embedded API server until SIGINT or SIGTERM.

use clap::Parser;
use std::path::PathBuf;

/// An embedded Kubernetes API server for development and tests.
#[derive(Debug, Parser)]
#[command(name = "opkit-envtest", version)]
struct Args {
    /// Where to write a kubeconfig pointing at the server.
    #[arg(long, value_name = "PATH")]
    write_kubeconfig: Option<PathBuf>,
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let env = match opkit_envtest::TestEnv::builder()
        .port(args.port)
        .build()
        .await
    {
        Ok(env) => env,
        Err(error) => {
            eprintln!("opkit-envtest: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.write_kubeconfig
        && let Err(error) = env.write_kubeconfig(path)
    {
        eprintln!("opkit-envtest: {error}");
        return std::process::ExitCode::FAILURE;
    }
    println!("{}", env.url());
    if let Some(path) = &args.write_kubeconfig {
        println!("kubeconfig written to {}", path.display());
    }
    wait_for_signal().await;
    drop(env);
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
