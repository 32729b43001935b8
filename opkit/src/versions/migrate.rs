//! Storage migration: every stored object of a kind rewritten in the storage version, then the
//! older versions dropped from the CRD's `status.storedVersions`, so a later release may stop
//! serving them.
//!
//! Each object gets an empty merge patch carrying its `resourceVersion`: the API server stores
//! it again, now in the storage version (a conflict means someone wrote it meanwhile, which did
//! the same). Progress is kept in an annotation of the CRD after every page, so a migration
//! that stops resumes after the last object it rewrote.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The CRD annotation holding a migration's progress: `{"version", "namespace", "name",
/// "migrated"}` of the last object rewritten.
pub const PROGRESS_ANNOTATION: &str = "opkit.dev/storage-migration";

/// Objects rewritten per page.
const PAGE: u32 = 100;

/// How far a migration has come.
///
/// ```
/// let progress = opkit::versions::Progress {
///     crd: "webapps.example.com".into(),
///     version: "v2".into(),
///     migrated: 40,
///     total: Some(100),
///     ..Default::default()
/// };
/// assert_eq!(progress.to_string(), "webapps.example.com: 40 of 100 objects rewritten in v2");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The CRD's name.
    pub crd: String,
    /// The storage version objects are rewritten in.
    pub version: String,
    /// Objects rewritten so far, counting those a resumed migration had done.
    pub migrated: u64,
    /// Objects seen so far and the ones left, when the server says (`remainingItemCount`).
    pub total: Option<u64>,
    /// Whether this run continued an earlier one.
    pub resumed: bool,
    /// Whether `status.storedVersions` now lists the storage version only.
    pub done: bool,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ", self.crd, self.migrated)?;
        if let Some(total) = self.total {
            write!(f, "of {total} ")?;
        }
        write!(f, "objects rewritten in {}", self.version)?;
        if self.resumed {
            write!(f, " (resumed)")?;
        }
        if self.done {
            write!(f, "; storedVersions is [{}]", self.version)?;
        }
        Ok(())
    }
}

/// Why a migration stopped; run it again to resume.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The CRD could not be read or written.
    #[error("{action} the CRD {name}: {source}")]
    Crd {
        /// Reading, or what was being written.
        action: &'static str,
        /// The CRD's name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The CRD marks no version as the storage version.
    #[error("the CRD {0} has no storage version")]
    NoStorageVersion(String),
    /// Listing the objects failed.
    #[error("listing {resource}: {source}")]
    List {
        /// `plural.group`.
        resource: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Rewriting one object failed.
    #[error("rewriting {object}: {source}")]
    Rewrite {
        /// `namespace/name` of the object.
        object: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Someone changed the storage version while the migration ran.
    #[error(
        "the storage version of {crd} changed from {from} to {to} during the migration; run it again"
    )]
    Changed {
        /// The CRD's name.
        crd: String,
        /// The version migrated to.
        from: String,
        /// The storage version now.
        to: String,
    },
}

/// Where a stopped migration resumes.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    version: String,
    namespace: String,
    name: String,
    migrated: u64,
}

fn checkpoint_of(crd: &CustomResourceDefinition, version: &str) -> Option<Checkpoint> {
    let value = crd
        .metadata
        .annotations
        .as_ref()?
        .get(PROGRESS_ANNOTATION)?;
    serde_json::from_str::<Checkpoint>(value)
        .ok()
        .filter(|c| c.version == version)
}

fn storage_version(crd: &CustomResourceDefinition) -> Option<String> {
    crd.spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.clone())
}

/// Rewrites every stored object of the CRD `crd_name` in its storage version, then sets
/// `status.storedVersions` to that version alone; `on_progress` hears after every page. A
/// migration that stops resumes where it stopped when run again; one with nothing to do
/// returns at once.
///
/// The caller needs `get` and `patch` on the CRD and on `customresourcedefinitions/status`,
/// and `list` and `patch` on the kind.
///
/// ```no_run
/// # async fn f(client: kube::Client) -> Result<(), opkit::versions::MigrationError> {
/// let progress = opkit::versions::migrate(&client, "webapps.example.com", |p| println!("{p}")).await?;
/// assert!(progress.done);
/// # Ok(()) }
/// ```
pub async fn migrate(
    client: &kube::Client,
    crd_name: &str,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Progress, MigrationError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_error = |action| {
        move |source| MigrationError::Crd {
            action,
            name: crd_name.to_owned(),
            source,
        }
    };
    let crd = crds.get(crd_name).await.map_err(crd_error("reading"))?;
    let version = storage_version(&crd)
        .ok_or_else(|| MigrationError::NoStorageVersion(crd_name.to_owned()))?;
    let stored = crd
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.clone())
        .unwrap_or_default();
    let mut progress = Progress {
        crd: crd_name.to_owned(),
        version: version.clone(),
        ..Progress::default()
    };
    if stored == [version.clone()] {
        progress.done = true;
        on_progress(&progress);
        return Ok(progress);
    }
    let checkpoint = checkpoint_of(&crd, &version);
    progress.resumed = checkpoint.is_some();
    progress.migrated = checkpoint.as_ref().map_or(0, |c| c.migrated);
    let mut after = checkpoint.map(|c| (c.namespace, c.name));
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version, &crd.spec.names.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
    let objects: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = match objects.list(&params).await {
            Ok(page) => page,
            // An expired continue token: list again from the start, skipping what is done.
            Err(kube::Error::Api(status)) if status.code == 410 && token.is_some() => {
                token = None;
                continue;
            }
            Err(source) => {
                return Err(MigrationError::List {
                    resource: crd_name.to_owned(),
                    source,
                });
            }
        };
        if progress.total.is_none() {
            let remaining = page.metadata.remaining_item_count.unwrap_or(0);
            progress.total = Some(page.items.len() as u64 + u64::try_from(remaining).unwrap_or(0));
        }
        for object in &page.items {
            let key = (
                object.metadata.namespace.clone().unwrap_or_default(),
                object.metadata.name.clone().unwrap_or_default(),
            );
            if after.as_ref().is_some_and(|done| &key <= done) {
                continue;
            }
            rewrite(client, &resource, object, &key).await?;
            progress.migrated += 1;
            after = Some(key);
        }
        if let Some((namespace, name)) = &after {
            let checkpoint = Checkpoint {
                version: version.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                migrated: progress.migrated,
            };
            let value = serde_json::to_string(&checkpoint).unwrap_or_default();
            let patch = json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: value}}});
            crds.patch(crd_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(crd_error("recording progress on"))?;
        }
        on_progress(&progress);
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    let crd = crds.get(crd_name).await.map_err(crd_error("reading"))?;
    let now = storage_version(&crd).unwrap_or_default();
    if now != version {
        return Err(MigrationError::Changed {
            crd: crd_name.to_owned(),
            from: version,
            to: now,
        });
    }
    // Conditional on the CRD as read: a storage version changed meanwhile is a conflict.
    let status = json!({
        "metadata": {"resourceVersion": crd.metadata.resource_version},
        "status": {"storedVersions": [version]},
    });
    crds.patch_status(crd_name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(crd_error("setting storedVersions of"))?;
    let clear = json!({"metadata": {"annotations": {PROGRESS_ANNOTATION: null}}});
    crds.patch(crd_name, &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .map_err(crd_error("clearing the progress of"))?;
    progress.done = true;
    on_progress(&progress);
    Ok(progress)
}

/// Stores `object` again: an empty merge patch conditional on the version listed.
async fn rewrite(
    client: &kube::Client,
    resource: &ApiResource,
    object: &DynamicObject,
    (namespace, name): &(String, String),
) -> Result<(), MigrationError> {
    let api: Api<DynamicObject> = if namespace.is_empty() {
        Api::all_with(client.clone(), resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, resource)
    };
    let patch = json!({"metadata": {"resourceVersion": object.metadata.resource_version}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        // Written since it was listed, so stored in the storage version already; or gone.
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Ok(()),
        Err(source) => Err(MigrationError::Rewrite {
            object: if namespace.is_empty() {
                name.clone()
            } else {
                format!("{namespace}/{name}")
            },
            source,
        }),
    }
}
