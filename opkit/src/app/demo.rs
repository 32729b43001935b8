//! The embedded demo mode: an in-process API server, the operator's CRDs and admission
//! policies installed, its controllers and webhooks running, samples applied and progress printed.

use std::path::PathBuf;

use kube::Client;

use super::{App, Cli, logging, progress};
use crate::embedded::Embedded;
use crate::error::{Error, Result};
use crate::manifests;
use crate::object::Object;

type Follow = Box<
    dyn FnOnce(Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send,
>;

/// What the demo mode adds to an [`App`].
#[derive(Default)]
pub(super) struct Demo {
    /// The embedded server is the default (`--cluster` opts out).
    pub enabled: bool,
    /// YAML applied once the controllers run.
    pub samples: Vec<String>,
    /// Progress printers, one per primary kind.
    follow: Vec<Follow>,
}

impl Demo {
    /// Prints the progress of the primaries of kind `K` while running.
    pub fn follow<K: Object>(&mut self) {
        self.follow
            .push(Box::new(|client| Box::pin(progress::follow::<K>(client))));
    }
}

/// Runs `app` on a fresh embedded API server until `shutdown` resolves.
pub(super) async fn serve(
    app: App,
    cli: Cli,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    logging::init(cli.log_format, "warn");
    println!("Starting the embedded API server...");
    let server = Embedded::start().await?;
    // Conversion webhooks are pointed at the local server once it runs.
    for crd in &app.crds("default", false)? {
        server.install(crd).await?;
    }
    let policies = app.policies_yaml("default")?;
    for applied in manifests::apply_yaml(&server.client(), &app.name, &policies).await? {
        println!("Installed {applied}");
    }
    #[cfg(feature = "webhooks")]
    let webhook_server = app
        .webhooks
        .start_local(&server.client())
        .await
        .map_err(|e| Error::Config(format!("admission webhooks: {e}")))?;
    #[cfg(feature = "webhooks")]
    if let Some(webhooks) = &webhook_server {
        println!("Admission webhooks at {}", webhooks.url());
    }
    let path = match &cli.write_kubeconfig {
        Some(path) => path.clone(),
        None => std::env::temp_dir().join(format!("{}-kubeconfig.yaml", app.name)),
    };
    write_kubeconfig(&server, path)?;
    let client = server.client();
    tokio::spawn(progress::events(client.clone()));
    for follow in app.demo.follow {
        tokio::spawn(follow(client.clone()));
    }
    let manager = App::manager(
        app.configure,
        client.clone(),
        app.election,
        &app.name,
        &cli,
        false,
        true,
    )
    .await?;
    println!("Operator running: {}", manager.controllers().join(", "));
    let running = manager.start();
    if let Some(addr) = running.health_probe_address() {
        println!("Probes at http://{addr}/healthz and http://{addr}/readyz");
    }
    if let Some(addr) = running.metrics_address() {
        // Plain HTTP unless asked: a demo is scraped with curl on loopback by whoever runs it.
        #[cfg(feature = "webhooks")]
        let scheme = if cli.probes.metrics_secure == Some(true) {
            "https"
        } else {
            "http"
        };
        #[cfg(not(feature = "webhooks"))]
        let scheme = "http";
        println!("Metrics at {scheme}://{addr}/metrics");
    }
    for sample in &app.demo.samples {
        for applied in manifests::apply_yaml(&client, &app.name, sample).await? {
            println!("Applied {applied}");
        }
    }
    println!("Press Ctrl-C to stop.");
    shutdown.await;
    println!("Shutting down...");
    running.shutdown().await;
    Ok(())
}

fn write_kubeconfig(server: &Embedded, path: PathBuf) -> Result<()> {
    server.write_kubeconfig(&path)?;
    println!("API server at {}; CRDs installed.", server.url());
    println!(
        "In another terminal:\n\n    export KUBECONFIG={}\n",
        path.display()
    );
    Ok(())
}
