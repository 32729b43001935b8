//! `opkit-envtest`: serves the embedded API server until SIGINT or SIGTERM.

use clap::Parser;
use std::io::Write;
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
    /// Serve plain HTTP instead of HTTPS; requests without credentials act as the admin.
    #[arg(long)]
    plain_http: bool,
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
    // Registered before the address is printed, so a supervisor that reads it
    // and signals at once still gets a clean shutdown.
    let signals = match Signals::new() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("opkit-envtest: cannot listen for signals: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut builder = opkit_envtest::TestEnv::builder().port(args.port);
    if args.plain_http {
        builder = builder.plain_http();
    }
    let env = match builder.build().await {
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
    // A closed stdout must not stop the server.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", env.url());
    if let Some(path) = &args.write_kubeconfig {
        let _ = writeln!(stdout, "kubeconfig written to {}", path.display());
    }
    let _ = stdout.flush();
    signals.wait().await;
    drop(env);
    std::process::ExitCode::SUCCESS
}

/// SIGINT and (on Unix) SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
