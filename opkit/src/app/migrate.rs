//! `migrate`: the storage migration of every kind the operator serves in several versions,
//! against the in-cluster config or the current kubeconfig context.

use super::{App, Cli, logging, serve};
use crate::error::{Error, Result};

/// Migrates the CRD `only`, or every CRD with several versions, printing progress.
pub(super) async fn run(app: &App, cli: &Cli, only: Option<&str>) -> Result<()> {
    logging::init(cli.log_format, "warn");
    let names: Vec<String> = app
        .versions
        .iter()
        .map(|c| c.crd_name())
        .filter(|name| only.is_none_or(|only| only == name))
        .collect();
    if names.is_empty() {
        return Err(Error::Config(match only {
            Some(name) => {
                format!("{name} is not a custom resource this operator serves in several versions")
            }
            None => "this operator serves no custom resource in several versions".to_owned(),
        }));
    }
    let client = serve::cluster_client().await?;
    for name in names {
        crate::versions::migrate(&client, &name, |p| println!("{p}"))
            .await
            .map_err(|e| Error::Config(format!("migrating {name}: {e}")))?;
    }
    Ok(())
}
