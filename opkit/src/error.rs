//! Errors and their classification into transient and permanent.
//!
//! Every failure a reconcile can meet is an [`Error`]. Its [`Error::is_transient`] answer decides
//! what happens next: transient errors (server errors, throttling, timeouts, conflicts, network)
//! are retried with per-object exponential backoff; permanent errors (an invalid spec, a forbidden
//! request, an object controlled by someone else, anything the operator declares permanent) set
//! `Degraded=True`, emit a Warning event and wait for the next spec change instead of hot-looping.
//! A forbidden request (403) is reported as permanent but retried with backoff, so a rule added
//! to the operator's RBAC takes effect without a change to the object.

use std::time::Duration;

/// The result type of reconcile functions and of every fallible opkit call.
///
/// ```
/// fn check(replicas: i32) -> opkit::Result<()> {
///     if replicas < 1 {
///         return Err(opkit::Error::invalid_spec("replicas must be at least 1"));
///     }
///     Ok(())
/// }
/// assert!(check(0).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reconciling.
///
/// ```
/// let err = opkit::Error::invalid_spec("secret \"db\" not found");
/// assert!(!err.is_transient());
/// assert_eq!(err.reason(), "InvalidSpec");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request to the Kubernetes API failed.
    #[error("{context}: {source}")]
    Kube {
        /// What opkit or the operator was doing.
        context: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A dependent object exists but another controller owns it; opkit refuses to adopt it.
    #[error(
        "{kind} {name} already exists and is controlled by {owner_kind} {owner_name}; delete it or rename the dependent"
    )]
    NotOwned {
        /// Kind of the dependent object.
        kind: String,
        /// `namespace/name` of the dependent object.
        name: String,
        /// Kind of the controller that owns it.
        owner_kind: String,
        /// Name of the controller that owns it.
        owner_name: String,
    },
    /// The primary's spec cannot be acted upon (for example it names a missing Secret): permanent.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A failure of the operator's own logic, declared transient or permanent: with
    /// [`Error::transient`]/[`Error::permanent`], [`ResultExt`], or converted with `?` from an error
    /// type implementing [`Classify`]. The original error, if any, is its [`source`](std::error::Error::source).
    #[error("{}", reconcile_message(message, source.as_deref()))]
    Reconcile {
        /// What failed (empty when the source says it all).
        message: String,
        /// Whether retrying with backoff may help.
        transient: bool,
        /// The CamelCase reason for conditions and events.
        reason: &'static str,
        /// The error that caused it.
        #[source]
        source: Option<BoxError>,
    },
    /// The operator's reconcile or cleanup panicked; the panic was caught.
    #[error("reconcile panicked: {0}")]
    Panicked(String),
    /// An object could not be converted to or from JSON.
    #[error("{context}: {source}")]
    Serialization {
        /// What was being converted.
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// An object is missing a field opkit needs (name, namespace, uid).
    #[error("{0} is missing from the object")]
    MissingField(&'static str),
    /// The operator's configuration is unusable (for example a cross-namespace dependent without a finalizer).
    #[error("operator configuration: {0}")]
    Config(String),
    /// Input/output failure outside the API (writing a kubeconfig, binding a port).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded API server failed to start or to install a CRD.
    #[error("embedded API server: {0}")]
    Embedded(String),
}

/// A boxed error of any type: the source of an [`Error::Reconcile`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn reconcile_message(
    message: &str,
    source: Option<&(dyn std::error::Error + Send + Sync)>,
) -> String {
    match source {
        Some(source) if message.is_empty() => source.to_string(),
        Some(source) => format!("{message}: {source}"),
        None => message.to_owned(),
    }
}

/// An error type of the operator's own that says whether retrying may help; any such error
/// converts into [`Error`] with `?`, kept as its source.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// enum BucketError {
///     #[error("bucket {0} is not reachable")]
///     Unreachable(String),
///     #[error("bucket name {0:?} is invalid")]
///     InvalidName(String),
/// }
///
/// impl opkit::Classify for BucketError {
///     fn is_transient(&self) -> bool {
///         matches!(self, Self::Unreachable(_))
///     }
/// }
///
/// fn upload(bucket: &str) -> Result<(), BucketError> {
///     Err(BucketError::Unreachable(bucket.into()))
/// }
///
/// fn reconcile() -> opkit::Result<()> {
///     upload("backups")?;
///     Ok(())
/// }
///
/// let err = reconcile().unwrap_err();
/// assert!(err.is_transient());
/// assert_eq!(err.to_string(), "bucket backups is not reachable");
/// let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<BucketError>());
/// assert!(matches!(source, Some(BucketError::Unreachable(_))));
/// ```
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// Whether retrying with backoff may succeed; permanent errors wait for the next change.
    fn is_transient(&self) -> bool;

    /// The CamelCase reason shown in conditions and events.
    fn reason(&self) -> &'static str {
        if self.is_transient() {
            "TransientError"
        } else {
            "PermanentError"
        }
    }
}

impl<E: Classify> From<E> for Error {
    fn from(error: E) -> Self {
        Self::Reconcile {
            message: String::new(),
            transient: error.is_transient(),
            reason: error.reason(),
            source: Some(Box::new(error)),
        }
    }
}

/// Classifies the error of any `Result` with a note of what was being done, keeping the error as
/// the source. In the prelude, so `?` reads as a sentence.
///
/// ```
/// use opkit::prelude::*;
///
/// fn port(text: &str) -> opkit::Result<u16> {
///     text.parse::<u16>().permanent("reading the port")
/// }
///
/// let err = port("http").unwrap_err();
/// assert!(!err.is_transient());
/// assert_eq!(err.to_string(), "reading the port: invalid digit found in string");
/// ```
pub trait ResultExt<T> {
    /// A failure retrying may fix (an external system is not ready yet).
    fn transient(self, context: impl Into<String>) -> Result<T>;

    /// A failure retrying will not fix until something changes.
    fn permanent(self, context: impl Into<String>) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for std::result::Result<T, E> {
    fn transient(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::caused_by(context, e, true))
    }

    fn permanent(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::caused_by(context, e, false))
    }
}

impl Error {
    /// A spec the operator cannot act on: permanent, shown as `Degraded` with reason `InvalidSpec`.
    ///
    /// ```
    /// let err = opkit::Error::invalid_spec("image must not be empty");
    /// assert!(!err.is_transient());
    /// ```
    pub fn invalid_spec(message: impl Into<String>) -> Self {
        Self::InvalidSpec(message.into())
    }

    /// A failure retrying will not fix until something changes.
    ///
    /// ```
    /// assert!(!opkit::Error::permanent("quota exhausted").is_transient());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Reconcile {
            message: message.into(),
            transient: false,
            reason: "PermanentError",
            source: None,
        }
    }

    /// A failure worth retrying with backoff (an external system is not ready yet).
    ///
    /// ```
    /// assert!(opkit::Error::transient("database not reachable yet").is_transient());
    /// ```
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Reconcile {
            message: message.into(),
            transient: true,
            reason: "TransientError",
            source: None,
        }
    }

    /// A failure caused by `source`, with what was being done; see also [`ResultExt`].
    ///
    /// ```
    /// let io = std::io::Error::other("connection refused");
    /// let err = opkit::Error::caused_by("reaching the database", io, true);
    /// assert!(err.is_transient());
    /// assert_eq!(err.to_string(), "reaching the database: connection refused");
    /// ```
    pub fn caused_by(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
        transient: bool,
    ) -> Self {
        Self::Reconcile {
            message: context.into(),
            transient,
            reason: if transient {
                "TransientError"
            } else {
                "PermanentError"
            },
            source: Some(Box::new(source)),
        }
    }

    /// Wraps a client error with what was being done.
    ///
    /// ```
    /// let status = kube::core::Status::failure("busy", "TooManyRequests").with_code(429);
    /// let err = opkit::Error::kube("listing pods", kube::Error::Api(Box::new(status)));
    /// assert!(err.is_transient());
    /// ```
    pub fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            context: context.into(),
            source,
        }
    }

    /// Whether retrying (with backoff) may succeed.
    ///
    /// Transient: HTTP 5xx, 429, 408, 409 (conflicts), 504 timeouts, network and stream errors,
    /// errors the operator declared transient, caught panics. Permanent: everything else,
    /// notably 400/422 (invalid), 401/403 (forbidden), 404 on a request the spec caused,
    /// invalid specs, dependents owned by someone else.
    ///
    /// ```
    /// let conflict = kube::core::Status::failure("modified", "Conflict").with_code(409);
    /// assert!(opkit::Error::from(kube::Error::Api(Box::new(conflict))).is_transient());
    /// let forbidden = kube::core::Status::failure("no", "Forbidden").with_code(403);
    /// assert!(!opkit::Error::from(kube::Error::Api(Box::new(forbidden))).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Kube { source, .. } => kube_error_is_transient(source),
            Self::Reconcile { transient, .. } => *transient,
            Self::Panicked(_) | Self::Io { .. } | Self::Embedded(_) => true,
            Self::NotOwned { .. }
            | Self::InvalidSpec(_)
            | Self::Serialization { .. }
            | Self::MissingField(_)
            | Self::Config(_) => false,
        }
    }

    /// A conflict (HTTP 409): another writer changed the object first. Optimistic concurrency
    /// makes these normal; the next attempt reads the new version.
    ///
    /// ```
    /// let conflict = kube::core::Status::failure("modified", "Conflict").with_code(409);
    /// assert!(opkit::Error::from(kube::Error::Api(Box::new(conflict))).is_conflict());
    /// assert!(!opkit::Error::transient("later").is_conflict());
    /// ```
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(status), .. } if status.code == 409)
    }

    /// A request the API server refused (HTTP 403): the operator's RBAC lacks a rule, or an
    /// admission plugin refused the write. Reported as permanent (`Ready=False`, reason
    /// `Forbidden`, with the server's message) but retried with backoff: an administrator may
    /// grant the rule without anything changing on the object.
    ///
    /// ```
    /// let forbidden = kube::core::Status::failure("no", "Forbidden").with_code(403);
    /// let err = opkit::Error::from(kube::Error::Api(Box::new(forbidden)));
    /// assert!(err.is_forbidden() && !err.is_transient());
    /// assert!(!opkit::Error::permanent("no").is_forbidden());
    /// ```
    pub fn is_forbidden(&self) -> bool {
        self.status_code() == Some(403)
    }

    /// A CamelCase reason for conditions and events.
    ///
    /// ```
    /// assert_eq!(opkit::Error::transient("later").reason(), "TransientError");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { source, .. } => match source {
                kube::Error::Api(status) => code_reason(status.code),
                _ => "NetworkError",
            },
            Self::NotOwned { .. } => "NotOwned",
            Self::InvalidSpec(_) => "InvalidSpec",
            Self::Reconcile { reason, .. } => reason,
            Self::Panicked(_) => "Panicked",
            Self::Serialization { .. } => "SerializationError",
            Self::MissingField(_) => "MissingField",
            Self::Config(_) => "ConfigError",
            Self::Io { .. } => "IoError",
            Self::Embedded(_) => "EmbeddedServerError",
        }
    }

    /// Wraps a serde error with what was being converted.
    ///
    /// ```
    /// let source = serde_json::from_str::<i32>("x").unwrap_err();
    /// let err = opkit::Error::serialization("reading status", source);
    /// assert!(!err.is_transient());
    /// ```
    pub fn serialization(context: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Serialization {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status code, when the API server answered with an error.
    ///
    /// ```
    /// let gone = kube::core::Status::failure("gone", "NotFound").with_code(404);
    /// assert_eq!(opkit::Error::from(kube::Error::Api(Box::new(gone))).status_code(), Some(404));
    /// ```
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// The reason of an API server's answer with HTTP status `code`.
fn code_reason(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        409 => "Conflict",
        400 | 422 => "Invalid",
        429 => "Throttled",
        500.. => "ServerError",
        _ => "ApiError",
    }
}

/// The reason of a failed watch, as [`Error::reason`] words it (`Forbidden` when RBAC lacks
/// `list` or `watch` on the kind).
pub(crate) fn watch_reason(error: &kube::runtime::watcher::Error) -> &'static str {
    use kube::runtime::watcher::Error as Watch;
    match error {
        Watch::InitialListFailed(kube::Error::Api(status))
        | Watch::WatchStartFailed(kube::Error::Api(status))
        | Watch::WatchFailed(kube::Error::Api(status))
        | Watch::WatchError(status) => code_reason(status.code),
        Watch::NoResourceVersion => "ApiError",
        _ => "NetworkError",
    }
}

fn kube_error_is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => matches!(status.code, 408 | 409 | 429 | 500..=599),
        kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::ReadEvents(_)
        | kube::Error::LinesCodecMaxLineLengthExceeded => true,
        _ => false,
    }
}

impl From<kube::Error> for Error {
    fn from(source: kube::Error) -> Self {
        Self::Kube {
            context: "Kubernetes API request".to_owned(),
            source,
        }
    }
}

/// How long to wait before retrying an error a server asked us to back off from.
pub(crate) fn retry_after_hint(err: &Error) -> Option<Duration> {
    match err {
        Error::Kube {
            source: kube::Error::Api(status),
            ..
        } if status.code == 429 => status
            .details
            .as_ref()
            .map(|d| u64::from(d.retry_after_seconds))
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        Error::from(kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "Reason").with_code(code),
        )))
    }

    #[test]
    fn classifies_api_codes() {
        for code in [408, 409, 429, 500, 502, 503, 504] {
            assert!(api(code).is_transient(), "{code} should be transient");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!api(code).is_transient(), "{code} should be permanent");
        }
    }

    #[test]
    fn classifies_declared_errors() {
        assert!(Error::transient("x").is_transient());
        assert!(!Error::permanent("x").is_transient());
        assert!(!Error::invalid_spec("x").is_transient());
        assert!(Error::Panicked("boom".into()).is_transient());
        let not_owned = Error::NotOwned {
            kind: "Deployment".into(),
            name: "default/web".into(),
            owner_kind: "Other".into(),
            owner_name: "x".into(),
        };
        assert!(!not_owned.is_transient());
        assert_eq!(not_owned.reason(), "NotOwned");
    }

    #[test]
    fn reasons_are_camel_case() {
        for err in [api(403), api(409), api(422), api(429), api(503), api(404)] {
            let reason = err.reason();
            assert!(
                reason
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
            );
            assert!(reason.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
