//! `run` against a cluster: the in-cluster config or the current kubeconfig context.

use kube::Client;

use super::{App, Cli, logging};
use crate::error::{Error, Result};

/// Runs the controllers (and webhooks) until `shutdown` resolves, then drains.
pub(super) async fn serve(
    app: App,
    cli: Cli,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    if cli.write_kubeconfig.is_some() {
        return Err(Error::Config(
            "--write-kubeconfig only applies to the embedded API server".to_owned(),
        ));
    }
    logging::init(cli.log_format, "info");
    let client = cluster_client(cli.kubeconfig.as_deref()).await?;
    // Every replica serves admission, leader or not.
    #[cfg(feature = "webhooks")]
    let webhook_server = app
        .webhooks
        .start_in_cluster(&client, &cli.webhook, client.default_namespace())
        .await
        .map_err(|e| Error::Config(format!("admission webhooks: {e}")))?;
    #[cfg(feature = "webhooks")]
    if let Some(webhooks) = &webhook_server {
        tracing::info!(addr = %webhooks.addr(), "serving admission webhooks");
    }
    // Inside a Pod the kubelet sets KUBERNETES_SERVICE_HOST; that is where replicas compete.
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let mut manager = App::manager(
        app.configure,
        client,
        app.election,
        &app.name,
        &cli,
        in_cluster,
        false,
    )
    .await?;
    if let Some(sharding) = cli.sharding.resolve(app.sharding, &app.name)? {
        tracing::info!(ring = %sharding.ring, identity = %sharding.identity, "sharded");
        manager = manager.sharded(sharding);
    }
    tracing::info!(controllers = ?manager.controllers(), "running");
    let running = manager.start();
    tracing::info!(
        probes = ?running.health_probe_address(),
        metrics = ?running.metrics_address(),
        "serving endpoints"
    );
    shutdown.await;
    tracing::info!("shutting down; waiting for in-flight reconciles");
    running.shutdown().await;
    Ok(())
}

/// A client from `kubeconfig`'s current context, or else the in-cluster config or the current
/// kubeconfig context.
pub(super) async fn cluster_client(kubeconfig: Option<&std::path::Path>) -> Result<Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let loaded = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(loaded, &Default::default())
                .await
                .map_err(|e| Error::Config(format!("loading {}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            Error::Config(format!("loading the in-cluster config or kubeconfig: {e}"))
        })?,
    };
    // opkit retries failed reconciles per object with backoff and jitter; the client's own
    // retries (up to 15 on 429/503/504) would hide those errors and stall the worker.
    config.default_retry = false;
    Client::try_from(config).map_err(|e| Error::kube("building the client", e))
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
