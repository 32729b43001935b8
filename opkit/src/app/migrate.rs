//! `migrate`: the storage migration of every kind the operator serves in several versions,
//! against `--kubeconfig`, the in-cluster config or the current kubeconfig context.

use std::path::Path;

use super::{LogFormat, logging, serve};
use crate::error::{Error, Result};

/// Migrates the CRD `only`, or every one of `crds` (those with several versions), printing
/// progress.
pub(super) async fn run(
    crds: Vec<String>,
    log_format: LogFormat,
    kubeconfig: Option<&Path>,
    only: Option<&str>,
) -> Result<()> {
    logging::init(log_format, "warn");
    let names: Vec<String> = crds
        .into_iter()
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
    let client = serve::cluster_client(kubeconfig).await?;
    for name in names {
        crate::versions::migrate(&client, &name, |p| println!("{p}"))
            .await
            .map_err(|e| Error::Config(format!("migrating {name}: {e}")))?;
    }
    Ok(())
}
