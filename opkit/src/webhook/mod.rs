//! Admission webhooks: [`Validator`]s and [`Mutator`]s typed on a custom resource, served over
//! HTTPS as AdmissionReview v1.
//!
//! A validator accepts or denies a write; a mutator changes the object and the server answers
//! with the JSON patch from the difference. [`Webhooks`] collects them, prints the
//! Validating/MutatingWebhookConfiguration manifests ([`Webhooks::yaml`]), installs them with a
//! caBundle ([`Webhooks::install`]) and serves them ([`Webhooks::serve`]) with a certificate
//! generated at start ([`Certificates::self_signed`]) or mounted by cert-manager
//! ([`Certificates::from_dir`]). The same server answers the ConversionReviews of kinds with
//! several versions ([`Webhooks::conversion`], see [`versions`](crate::versions)), and
//! [`Webhooks::install`] points their CRDs at it.
//!
//! ```
//! use opkit::prelude::*;
//! use opkit::webhook::{AdmissionRequest, Validator, Verdict, Webhooks};
//!
//! #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
//! pub struct AppSpec { pub replicas: i32 }
//! # impl Reconcile for App { async fn reconcile(&self, _: &Context<Self>) -> opkit::Result<Action> { Ok(Action::done()) } }
//!
//! struct AtMostTen;
//!
//! impl Validator<App> for AtMostTen {
//!     async fn validate(&self, request: &AdmissionRequest<App>) -> Verdict {
//!         match &request.object {
//!             Some(app) if app.spec.replicas > 10 => Verdict::deny("at most 10 replicas"),
//!             _ => Verdict::allow(),
//!         }
//!     }
//! }
//!
//! let webhooks = Webhooks::new("app-operator").validator::<App>(AtMostTen);
//! assert!(webhooks.yaml("ops").is_ok_and(|y| y.contains("path: /validate-example-com-v1-app")));
//! ```

mod certs;
mod config;
mod conversion;
mod review;
mod run;
mod server;

use std::future::Future;

pub use certs::Certificates;
pub use config::{Configurations, Endpoint};
pub use k8s_openapi::api::authentication::v1::UserInfo;
pub use kube::core::admission::{AdmissionRequest, Operation};
pub use run::WebhookFlags;
pub use server::WebhookServer;

use config::Hook;
use conversion::Conversion;
use review::Handler;

/// Errors of the webhook machinery (certificates, TLS, manifests, installation).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A certificate could not be generated or parsed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A certificate or key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The listening socket could not be opened.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest could not be serialized.
    #[error("serializing the webhook configurations: {0}")]
    Serialize(String),
    /// The API server refused a webhook configuration.
    #[error("installing {name}: {source}")]
    Install {
        /// The configuration's name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// The answer of a [`Validator`] or [`Mutator`]: allowed, or denied with a message; warnings
/// either way (kubectl prints them).
///
/// ```
/// use opkit::webhook::Verdict;
/// let verdict = Verdict::deny("images must come from an approved registry").code(403);
/// assert!(!verdict.is_allowed());
/// assert_eq!(verdict.message(), Some("images must come from an approved registry"));
/// let verdict = Verdict::allow().warn("no resource limits");
/// assert_eq!(verdict.warnings(), ["no resource limits"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    allowed: bool,
    message: Option<String>,
    code: u16,
    warnings: Vec<String>,
}

impl Verdict {
    /// The write may proceed.
    ///
    /// ```
    /// assert!(opkit::webhook::Verdict::allow().is_allowed());
    /// ```
    pub fn allow() -> Self {
        Self {
            allowed: true,
            message: None,
            code: 200,
            warnings: Vec::new(),
        }
    }

    /// The write is refused with `message` (HTTP 403 unless [`Verdict::code`] says otherwise).
    ///
    /// ```
    /// let verdict = opkit::webhook::Verdict::deny("resource limits required in production");
    /// assert_eq!(verdict.status_code(), 403);
    /// ```
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            allowed: false,
            message: Some(message.into()),
            code: 403,
            warnings: Vec::new(),
        }
    }

    /// The HTTP code the API server returns for a denial.
    ///
    /// ```
    /// let verdict = opkit::webhook::Verdict::deny("bad").code(422);
    /// assert_eq!(verdict.status_code(), 422);
    /// ```
    #[must_use]
    pub fn code(mut self, code: u16) -> Self {
        self.code = code;
        self
    }

    /// Adds a warning returned to the client.
    ///
    /// ```
    /// let verdict = opkit::webhook::Verdict::allow().warn("deprecated field");
    /// assert_eq!(verdict.warnings().len(), 1);
    /// ```
    #[must_use]
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Whether the write may proceed.
    ///
    /// ```
    /// assert!(!opkit::webhook::Verdict::deny("no").is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The denial message.
    ///
    /// ```
    /// assert_eq!(opkit::webhook::Verdict::allow().message(), None);
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The HTTP code of a denial.
    ///
    /// ```
    /// assert_eq!(opkit::webhook::Verdict::deny("no").status_code(), 403);
    /// ```
    pub fn status_code(&self) -> u16 {
        self.code
    }

    /// The warnings.
    ///
    /// ```
    /// assert!(opkit::webhook::Verdict::allow().warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Accepts or denies writes of `K` before they are stored.
///
/// `request.object` is the new object (create, update), `request.old_object` the stored one
/// (update, delete); `request.namespace`, `request.operation` and `request.user_info` say where,
/// what and who.
///
/// ```
/// use opkit::webhook::{AdmissionRequest, Operation, Validator, Verdict};
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub image: String }
/// struct ImmutableImage;
///
/// impl Validator<App> for ImmutableImage {
///     const OPERATIONS: &'static [Operation] = &[Operation::Update];
///
///     async fn validate(&self, request: &AdmissionRequest<App>) -> Verdict {
///         match (&request.old_object, &request.object) {
///             (Some(old), Some(new)) if old.spec.image != new.spec.image => {
///                 Verdict::deny(format!("{} may not change the image", request.user_info.username.as_deref().unwrap_or("nobody")))
///             }
///             _ => Verdict::allow(),
///         }
///     }
/// }
/// ```
pub trait Validator<K: kube::Resource>: Send + Sync + 'static {
    /// The operations the API server sends (the configuration's rule).
    const OPERATIONS: &'static [Operation] = &[Operation::Create, Operation::Update];

    /// The verdict on one request.
    fn validate(&self, request: &AdmissionRequest<K>) -> impl Future<Output = Verdict> + Send;
}

/// Changes objects of `K` before they are validated and stored; the server answers with the
/// JSON patch from the original to the mutated object.
///
/// ```
/// use opkit::webhook::{AdmissionRequest, Mutator, Verdict};
/// # use opkit::prelude::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub image: String }
/// struct ManagedBy;
///
/// impl Mutator<App> for ManagedBy {
///     async fn mutate(&self, _: &AdmissionRequest<App>, app: &mut App) -> Verdict {
///         app.labels_mut().insert("managed-by".into(), "app-operator".into());
///         Verdict::allow()
///     }
/// }
/// ```
pub trait Mutator<K: kube::Resource>: Send + Sync + 'static {
    /// The operations the API server sends (the configuration's rule).
    const OPERATIONS: &'static [Operation] = &[Operation::Create, Operation::Update];

    /// Mutates `object` (the request's new object) in place; a denial refuses the write.
    fn mutate(
        &self,
        request: &AdmissionRequest<K>,
        object: &mut K,
    ) -> impl Future<Output = Verdict> + Send;
}

/// What an admission webhook needs of a resource type.
pub trait Admitted:
    kube::Resource<DynamicType = ()>
    + serde::de::DeserializeOwned
    + serde::Serialize
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<K> Admitted for K where
    K: kube::Resource<DynamicType = ()>
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The admission and conversion webhooks of one operator: their handlers, their
/// configurations and their server.
///
/// ```
/// # use opkit::prelude::*;
/// # use opkit::webhook::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub image: String }
/// # struct Policy;
/// # impl Validator<App> for Policy { async fn validate(&self, _: &AdmissionRequest<App>) -> Verdict { Verdict::allow() } }
/// let webhooks = Webhooks::new("app-operator").validator::<App>(Policy).timeout_seconds(5);
/// assert_eq!(webhooks.paths(), ["/validate-example-com-v1-app"]);
/// ```
#[derive(Clone)]
pub struct Webhooks {
    name: String,
    timeout_seconds: i32,
    max_body_bytes: usize,
    cert_manager: bool,
    hooks: Vec<Hook>,
    conversions: Vec<Conversion>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("name", &self.name)
            .field("paths", &self.paths())
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Webhooks of the operator `name`: the configurations' name and the Service
    /// `<name>-webhook`.
    ///
    /// ```
    /// let webhooks = opkit::webhook::Webhooks::new("app-operator");
    /// assert!(webhooks.is_empty());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            timeout_seconds: 10,
            max_body_bytes: review::MAX_BODY_BYTES,
            cert_manager: false,
            hooks: Vec::new(),
            conversions: Vec::new(),
        }
    }

    /// Adds a validating webhook for `K`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::webhook::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// # struct Policy;
    /// # impl Validator<App> for Policy { async fn validate(&self, _: &AdmissionRequest<App>) -> Verdict { Verdict::allow() } }
    /// let webhooks = Webhooks::new("app-operator").validator::<App>(Policy);
    /// assert!(!webhooks.is_empty());
    /// ```
    #[must_use]
    pub fn validator<K: Admitted>(mut self, validator: impl Validator<K>) -> Self {
        self.push(config::validating(validator));
        self
    }

    /// Adds a mutating webhook for `K`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::webhook::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// # struct Defaults;
    /// # impl Mutator<App> for Defaults { async fn mutate(&self, _: &AdmissionRequest<App>, _: &mut App) -> Verdict { Verdict::allow() } }
    /// let webhooks = Webhooks::new("app-operator").mutator::<App>(Defaults);
    /// assert_eq!(webhooks.paths(), ["/mutate-example-com-v1-app"]);
    /// ```
    #[must_use]
    pub fn mutator<K: Admitted>(mut self, mutator: impl Mutator<K>) -> Self {
        self.push(config::mutating(mutator));
        self
    }

    /// Adds the conversion webhook of a kind with several versions, served at
    /// [`Versions::path`](crate::versions::Versions::path); [`Webhooks::install`] points the
    /// kind's CRD at it. A later one for the same CRD replaces it.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// use opkit::versions::Versions;
    /// let webhooks = opkit::webhook::Webhooks::new("app-operator").conversion(Versions::<App>::new());
    /// assert_eq!(webhooks.paths(), ["/convert-example-com-app"]);
    /// ```
    #[must_use]
    pub fn conversion<H>(mut self, versions: crate::versions::Versions<H>) -> Self {
        let catalog = versions.catalog().clone();
        self.conversions
            .retain(|c| c.catalog.crd_name() != catalog.crd_name());
        self.conversions.push(Conversion::new(catalog));
        self
    }

    /// How long the API server waits for an answer (default 10 s, at most 30).
    ///
    /// ```
    /// let webhooks = opkit::webhook::Webhooks::new("app-operator").timeout_seconds(5);
    /// # let _ = webhooks;
    /// ```
    #[must_use]
    pub fn timeout_seconds(mut self, seconds: i32) -> Self {
        self.timeout_seconds = seconds.clamp(1, 30);
        self
    }

    /// The largest AdmissionReview body the server reads (default 8 MiB); larger ones get 400.
    ///
    /// ```
    /// let webhooks = opkit::webhook::Webhooks::new("app-operator").max_body_bytes(1 << 20);
    /// # let _ = webhooks;
    /// ```
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Whether [`Webhooks::yaml`] asks cert-manager to inject the caBundle
    /// (`cert-manager.io/inject-ca-from: <namespace>/<name>-webhook`).
    ///
    /// ```
    /// let yaml = opkit::webhook::Webhooks::new("app-operator").cert_manager(true).yaml("ops");
    /// # let _ = yaml;
    /// ```
    #[must_use]
    pub fn cert_manager(mut self, enabled: bool) -> Self {
        self.cert_manager = enabled;
        self
    }

    /// Whether no webhook was added.
    ///
    /// ```
    /// assert!(opkit::webhook::Webhooks::new("x").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty() && self.conversions.is_empty()
    }

    /// The URL paths served: the admission webhooks' in the order they were added, then the
    /// conversion webhooks'.
    ///
    /// ```
    /// assert!(opkit::webhook::Webhooks::new("x").paths().is_empty());
    /// ```
    pub fn paths(&self) -> Vec<String> {
        self.hooks
            .iter()
            .map(|h| h.path.clone())
            .chain(self.conversions.iter().map(|c| c.catalog.path()))
            .collect()
    }

    /// The name of the Service in front of the webhook server: `<name>-webhook`.
    ///
    /// ```
    /// assert_eq!(opkit::webhook::Webhooks::new("app-operator").service_name(), "app-operator-webhook");
    /// ```
    pub fn service_name(&self) -> String {
        format!("{}-webhook", self.name)
    }

    /// Several webhooks of one type for one kind get distinct names and paths: `-2`, `-3`...
    fn push(&mut self, mut hook: Hook) {
        let numbered = |path: &str| {
            path.strip_prefix(hook.path.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.parse::<u32>().is_ok())
        };
        let same = self
            .hooks
            .iter()
            .filter(|h| h.path == hook.path || numbered(&h.path))
            .count();
        if same > 0 {
            let n = same + 1;
            hook.path = format!("{}-{n}", hook.path);
            if let Some((prefix, rest)) = hook.name.split_once('.') {
                hook.name = format!("{prefix}-{n}.{rest}");
            }
        }
        self.hooks.push(hook);
    }

    fn handlers(&self) -> Vec<(String, Handler)> {
        self.hooks
            .iter()
            .map(|h| (h.path.clone(), h.handler.clone()))
            .chain(
                self.conversions
                    .iter()
                    .map(|c| (c.catalog.path(), c.handler.clone())),
            )
            .collect()
    }
}
