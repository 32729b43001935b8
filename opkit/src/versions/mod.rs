//! Custom resources that evolve: several versions of one kind in one CRD, conversions between
//! them written as ordinary Rust, a conversion webhook, and storage migration.
//!
//! Each version is its own type (kube's `CustomResource` derive). One of them is the **hub**:
//! the storage version, the one the operator reconciles. Every other version is a **spoke**,
//! converted to and from the hub with `From` or `TryFrom` in both directions; a spoke converts
//! to another spoke through the hub. [`Versions`] assembles the CRD with every version
//! ([`Versions::crd`]) and converts objects for the API server ([`Versions::convert`]), which
//! opkit's webhook server answers ConversionReviews with ([`App::versions`](crate::App::versions)
//! registers both). [`migrate`] rewrites stored objects to the storage version.
//!
//! A spoke that cannot hold a field of the hub keeps it, as kubebuilder recommends, in the
//! annotation [`CONVERSION_ANNOTATION`]: converting the object back restores it, so a client of
//! an older version that reads and writes an object loses nothing. A spoke whose data the hub
//! cannot hold is refused, as that data would be lost when stored.
//!
//! ```
//! use opkit::prelude::*;
//! use opkit::versions::Versions;
//!
//! mod v1 {
//!     use opkit::prelude::*;
//!     #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//!     #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
//!     pub struct SiteSpec { pub image: String }
//! }
//!
//! mod v2 {
//!     use opkit::prelude::*;
//!     #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//!     #[kube(group = "example.com", version = "v2", kind = "Site", namespaced)]
//!     pub struct SiteSpec { pub repository: String, pub tag: String }
//! }
//!
//! impl From<v1::Site> for v2::Site {
//!     fn from(old: v1::Site) -> Self {
//!         let (repository, tag) = old.spec.image.split_once(':').unwrap_or((&old.spec.image, "latest"));
//!         let spec = v2::SiteSpec { repository: repository.into(), tag: tag.into() };
//!         v2::Site { metadata: old.metadata, spec }
//!     }
//! }
//!
//! impl From<v2::Site> for v1::Site {
//!     fn from(new: v2::Site) -> Self {
//!         let spec = v1::SiteSpec { image: format!("{}:{}", new.spec.repository, new.spec.tag) };
//!         v1::Site { metadata: new.metadata, spec }
//!     }
//! }
//!
//! let versions = Versions::<v2::Site>::new().spoke::<v1::Site>();
//! let old = serde_json::json!({
//!     "apiVersion": "example.com/v1", "kind": "Site",
//!     "metadata": {"name": "blog", "namespace": "default"},
//!     "spec": {"image": "nginx:1.27"},
//! });
//! let new = versions.convert(vec![old], "example.com/v2")?;
//! assert_eq!(new[0]["spec"], serde_json::json!({"repository": "nginx", "tag": "1.27"}));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod convert;
mod migrate;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::marker::PhantomData;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::CustomResourceExt;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use convert::ConversionError;
pub use migrate::{MigrationError, PROGRESS_ANNOTATION, Progress, migrate};

use crate::webhook::Endpoint;

/// The annotation a spoke keeps the hub's fields it cannot hold in, as a JSON merge patch;
/// converting the object back to the hub applies it.
pub const CONVERSION_ANNOTATION: &str = "opkit.dev/conversion-data";

/// A custom resource type that can be one version of a kind.
pub trait Version:
    CustomResourceExt
    + Resource<DynamicType = ()>
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Version for T where
    T: CustomResourceExt
        + Resource<DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Why versions could not be put together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A spoke is not a version of the hub's kind.
    #[error("{spoke} is not a version of {hub}: {what} differs")]
    Mismatch {
        /// The hub's `group/version Kind`.
        hub: String,
        /// The spoke's `group/version Kind`.
        spoke: String,
        /// What differs: the group, the kind, the plural or the scope.
        what: &'static str,
    },
    /// Two types declare the same version.
    #[error("{0} is declared twice")]
    Duplicate(String),
    /// kube could not merge the per-version CRDs.
    #[error("merging the CRDs of {kind}: {message}")]
    Merge {
        /// The kind.
        kind: String,
        /// kube's error.
        message: String,
    },
}

/// One type-erased conversion step, on JSON objects.
pub(crate) type Step = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// How a spoke moves to and from the hub, and what its objects look like as its type.
#[derive(Clone)]
pub(crate) struct SpokeSteps {
    pub to_hub: Step,
    pub from_hub: Step,
    /// The object as the spoke's type serializes it (defaults filled, unknown fields dropped).
    pub normalize: Step,
}

/// Parses `value` as `T` and serializes it back.
fn through<T: Serialize + DeserializeOwned>(value: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// `A` to `B` with `TryFrom`, on JSON.
fn step<A, B>(value: Value) -> Result<Value, String>
where
    A: DeserializeOwned,
    B: Serialize + TryFrom<A, Error: Display>,
{
    let from: A = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let to = B::try_from(from).map_err(|e| e.to_string())?;
    serde_json::to_value(to).map_err(|e| e.to_string())
}

/// The versions of one custom resource: the hub `H` and its spokes, their CRD and their
/// conversions.
///
/// ```
/// # use opkit::prelude::*;
/// # mod v1 { use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced, deprecated)]
/// # pub struct SiteSpec { pub replicas: i32 } }
/// # mod v2 { use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v2", kind = "Site", namespaced)]
/// # pub struct SiteSpec { pub replicas: i32 } }
/// # impl From<v1::Site> for v2::Site { fn from(s: v1::Site) -> Self { v2::Site { metadata: s.metadata, spec: v2::SiteSpec { replicas: s.spec.replicas } } } }
/// # impl From<v2::Site> for v1::Site { fn from(s: v2::Site) -> Self { v1::Site { metadata: s.metadata, spec: v1::SiteSpec { replicas: s.spec.replicas } } } }
/// use opkit::versions::Versions;
/// let versions = Versions::<v2::Site>::new().spoke::<v1::Site>();
/// assert_eq!(versions.hub_version(), "v2");
/// assert_eq!(versions.versions(), ["v2", "v1"]);
/// assert_eq!(versions.path(), "/convert-example-com-site");
/// ```
pub struct Versions<H> {
    catalog: Catalog,
    hub: PhantomData<fn() -> H>,
}

impl<H> Clone for Versions<H> {
    fn clone(&self) -> Self {
        Self {
            catalog: self.catalog.clone(),
            hub: PhantomData,
        }
    }
}

impl<H> std::fmt::Debug for Versions<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.catalog.fmt(f)
    }
}

/// The versions of a kind without the hub's type: what the webhook server, the command line
/// and the CRD assembly work with.
#[derive(Clone)]
pub(crate) struct Catalog {
    group: String,
    kind: String,
    plural: String,
    scope: String,
    hub: String,
    /// One single-version CRD per version, the hub's first.
    crds: Vec<CustomResourceDefinition>,
    hub_normalize: Step,
    spokes: BTreeMap<String, SpokeSteps>,
    /// The first spoke refused, reported by [`Catalog::crd`].
    problem: Option<VersionError>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versions")
            .field("kind", &self.kind)
            .field("hub", &self.hub)
            .field("versions", &self.versions())
            .finish_non_exhaustive()
    }
}

fn describe<K: Version>() -> String {
    format!("{} {}", K::api_version(&()), K::kind(&()))
}

impl<H: Version> Default for Versions<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Version> Versions<H> {
    /// The versions of `H`'s kind, with `H` as the hub: the storage version, the one the
    /// operator reconciles.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v2", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// let versions = opkit::versions::Versions::<Site>::new();
    /// assert_eq!(versions.crd_name(), "sites.example.com");
    /// ```
    pub fn new() -> Self {
        let crd = H::crd();
        Self {
            catalog: Catalog {
                group: H::group(&()).into_owned(),
                kind: H::kind(&()).into_owned(),
                plural: H::plural(&()).into_owned(),
                scope: crd.spec.scope.clone(),
                hub: H::version(&()).into_owned(),
                crds: vec![crd],
                hub_normalize: Arc::new(through::<H>),
                spokes: BTreeMap::new(),
                problem: None,
            },
            hub: PhantomData,
        }
    }

    /// Adds the version `S`, converted to and from the hub with `TryFrom` or `From`. A type of
    /// another kind, or a version declared twice, is left out and reported by
    /// [`Versions::crd`] (and so by the operator's `crd` and `run`).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # mod v1 { use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 } }
    /// # mod v2 { use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v2", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 } }
    /// # impl From<v1::Site> for v2::Site { fn from(s: v1::Site) -> Self { v2::Site { metadata: s.metadata, spec: v2::SiteSpec { replicas: s.spec.replicas } } } }
    /// # impl From<v2::Site> for v1::Site { fn from(s: v2::Site) -> Self { v1::Site { metadata: s.metadata, spec: v1::SiteSpec { replicas: s.spec.replicas } } } }
    /// use opkit::versions::{Versions, VersionError};
    /// use opkit::webhook::Endpoint;
    /// let versions = Versions::<v2::Site>::new().spoke::<v1::Site>();
    /// assert_eq!(versions.versions(), ["v2", "v1"]);
    /// let twice = versions.spoke::<v1::Site>();
    /// let error = twice.crd(&Endpoint::Url("https://localhost:9443".into()), None).unwrap_err();
    /// assert_eq!(error, VersionError::Duplicate("example.com/v1 Site".into()));
    /// ```
    #[must_use]
    pub fn spoke<S>(mut self) -> Self
    where
        S: Version + TryFrom<H, Error: Display>,
        H: TryFrom<S, Error: Display>,
    {
        if let Err(problem) = self.add::<S>() {
            self.catalog.problem.get_or_insert(problem);
        }
        self
    }

    fn add<S>(&mut self) -> Result<(), VersionError>
    where
        S: Version + TryFrom<H, Error: Display>,
        H: TryFrom<S, Error: Display>,
    {
        let catalog = &mut self.catalog;
        let crd = S::crd();
        let mismatch = |what| VersionError::Mismatch {
            hub: describe::<H>(),
            spoke: describe::<S>(),
            what,
        };
        if S::group(&()) != catalog.group {
            return Err(mismatch("the group"));
        }
        if S::kind(&()) != catalog.kind {
            return Err(mismatch("the kind"));
        }
        if S::plural(&()) != catalog.plural {
            return Err(mismatch("the plural"));
        }
        if crd.spec.scope != catalog.scope {
            return Err(mismatch("the scope"));
        }
        let version = S::version(&()).into_owned();
        if version == catalog.hub || catalog.spokes.contains_key(&version) {
            return Err(VersionError::Duplicate(describe::<S>()));
        }
        catalog.spokes.insert(
            version,
            SpokeSteps {
                to_hub: Arc::new(step::<S, H>),
                from_hub: Arc::new(step::<H, S>),
                normalize: Arc::new(through::<S>),
            },
        );
        catalog.crds.push(crd);
        Ok(())
    }

    /// The hub's version name.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v2", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// assert_eq!(opkit::versions::Versions::<Site>::new().hub_version(), "v2");
    /// ```
    pub fn hub_version(&self) -> &str {
        &self.catalog.hub
    }

    /// Every version name, newest first as Kubernetes orders versions (`v2`, `v1`, `v1beta1`).
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1beta1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// assert_eq!(opkit::versions::Versions::<Site>::new().versions(), ["v1beta1"]);
    /// ```
    pub fn versions(&self) -> Vec<String> {
        self.catalog.versions()
    }

    /// The name of the CRD: `<plural>.<group>`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// assert_eq!(opkit::versions::Versions::<Site>::new().crd_name(), "sites.example.com");
    /// ```
    pub fn crd_name(&self) -> String {
        self.catalog.crd_name()
    }

    /// The URL path the conversion webhook is served at: `/convert-<group with dashes>-<kind>`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "apps.example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// assert_eq!(opkit::versions::Versions::<Site>::new().path(), "/convert-apps-example-com-site");
    /// ```
    pub fn path(&self) -> String {
        self.catalog.path()
    }

    /// The CRD with every version (the hub the storage version), each version's schema,
    /// printer columns and deprecation, and `spec.conversion` calling the webhook at
    /// `endpoint` trusting `ca_bundle` (PEM) when given.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// use opkit::webhook::Endpoint;
    /// let endpoint = Endpoint::Service { namespace: "ops".into(), name: "site-operator-webhook".into(), port: 443 };
    /// let crd = opkit::versions::Versions::<Site>::new().crd(&endpoint, None)?;
    /// let conversion = crd.spec.conversion.unwrap_or_default();
    /// assert_eq!(conversion.strategy, "Webhook");
    /// # Ok::<(), opkit::versions::VersionError>(())
    /// ```
    pub fn crd(
        &self,
        endpoint: &Endpoint,
        ca_bundle: Option<&str>,
    ) -> Result<CustomResourceDefinition, VersionError> {
        self.catalog.crd(endpoint, ca_bundle)
    }

    /// Converts `objects` (each in any version of the kind) to `desired_api_version`, as the
    /// conversion webhook does for the API server: through the hub, keeping what a spoke
    /// cannot hold in [`CONVERSION_ANNOTATION`]; objects already in that version are returned
    /// as they are.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
    /// # pub struct SiteSpec { pub replicas: i32 }
    /// let versions = opkit::versions::Versions::<Site>::new();
    /// let error = versions.convert(vec![], "example.com/v9").unwrap_err();
    /// assert_eq!(error.to_string(), "example.com/v9 is not a version of Site (example.com/v1)");
    /// ```
    pub fn convert(
        &self,
        objects: Vec<Value>,
        desired_api_version: &str,
    ) -> Result<Vec<Value>, ConversionError> {
        self.catalog.convert(objects, desired_api_version)
    }
}

impl<H> Versions<H> {
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

impl Catalog {
    pub fn versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = std::iter::once(self.hub.clone())
            .chain(self.spokes.keys().cloned())
            .collect();
        versions.sort_by(|a, b| compare_versions(b, a));
        versions
    }

    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    pub fn path(&self) -> String {
        format!(
            "/convert-{}-{}",
            self.group.replace('.', "-"),
            self.kind.to_lowercase()
        )
    }

    pub fn crd(
        &self,
        endpoint: &Endpoint,
        ca_bundle: Option<&str>,
    ) -> Result<CustomResourceDefinition, VersionError> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        let mut crd = kube::core::crd::merge_crds(self.crds.clone(), &self.hub).map_err(|e| {
            VersionError::Merge {
                kind: self.kind.clone(),
                message: e.to_string(),
            }
        })?;
        crd.spec
            .versions
            .sort_by(|a, b| compare_versions(&b.name, &a.name));
        let path = self.path();
        let client_config = match endpoint {
            Endpoint::Url(base) => WebhookClientConfig {
                url: Some(format!("{}{path}", base.trim_end_matches('/'))),
                ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
                service: None,
            },
            Endpoint::Service {
                namespace,
                name,
                port,
            } => WebhookClientConfig {
                url: None,
                ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
                service: Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(path),
                    port: Some(*port),
                }),
            },
        };
        crd.spec.conversion = Some(CustomResourceConversion {
            strategy: "Webhook".to_owned(),
            webhook: Some(WebhookConversion {
                client_config: Some(client_config),
                conversion_review_versions: vec!["v1".to_owned()],
            }),
        });
        Ok(crd)
    }

    pub fn api_version(&self, version: &str) -> String {
        format!("{}/{version}", self.group)
    }
}

/// Kubernetes' version order: GA above beta above alpha, then by major and minor number;
/// other names below them all, alphabetically.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major = rest.get(..digits)?.parse().ok()?;
        let tail = rest.get(digits..)?;
        if tail.is_empty() {
            return Some((2, major, 0));
        }
        for (level, prefix) in [(1, "beta"), (0, "alpha")] {
            if let Some(minor) = tail.strip_prefix(prefix) {
                return Some((level, major, minor.parse().ok()?));
            }
        }
        None
    }
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (None, None) => b.cmp(a),
    }
}
