//! The admission policies for WebApps, on the hub version `v2`; the API server converts a
//! `v1` request for them (`matchPolicy: Equivalent`).
//!
//! Validating: at most `max_production_replicas` (10) replicas in the `production` namespace,
//! images only from the approved registries, resource limits required in `production`.
//! Mutating: the labels `managed-by` and `version`, and a restricted security context in
//! `production`.

use opkit::prelude::*;
use opkit::webhook::{AdmissionRequest, Mutator, Validator, Verdict};

use super::types::WebApp;

/// The namespace the stricter rules apply to.
pub const PRODUCTION: &str = "production";

/// The environment variable listing approved registries, comma-separated.
pub const REGISTRIES_ENV: &str = "WEBAPP_APPROVED_REGISTRIES";

/// The environment variable with the replica cap in `production`.
pub const MAX_REPLICAS_ENV: &str = "WEBAPP_MAX_PRODUCTION_REPLICAS";

/// The validating policy and its configuration.
#[derive(Clone, Debug)]
pub struct WebAppPolicy {
    registries: Vec<String>,
    max_production_replicas: i32,
}

impl WebAppPolicy {
    /// Images must come from one of `registries` (`registry.example.com` or a prefix with a
    /// path such as `docker.io/library`); references without a registry are Docker Hub's.
    pub fn new(registries: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let registries = registries
            .into_iter()
            .map(|r| format!("{}/", r.into().trim().trim_end_matches('/')))
            .filter(|r| r != "/")
            .collect();
        Self { registries, max_production_replicas: 10 }
    }

    /// The registries from `WEBAPP_APPROVED_REGISTRIES` (Docker Hub's official images when
    /// unset) and the cap from `WEBAPP_MAX_PRODUCTION_REPLICAS` (10 when unset).
    pub fn from_env() -> Self {
        let policy = match std::env::var(REGISTRIES_ENV) {
            Ok(list) if !list.trim().is_empty() => Self::new(list.split(',')),
            _ => Self::new(["docker.io/library"]),
        };
        match std::env::var(MAX_REPLICAS_ENV).ok().and_then(|v| v.trim().parse().ok()) {
            Some(max) => policy.max_production_replicas(max),
            None => policy,
        }
    }

    /// The replica cap in `production` (default 10).
    pub fn max_production_replicas(mut self, replicas: i32) -> Self {
        self.max_production_replicas = replicas;
        self
    }

    /// Why `app` may not be stored in `namespace`, if it may not.
    pub fn check(&self, namespace: &str, app: &WebApp) -> Result<(), String> {
        let production = namespace == PRODUCTION;
        if production && app.spec.scale.replicas > self.max_production_replicas {
            return Err(format!(
                "production workloads cannot exceed {} replicas",
                self.max_production_replicas
            ));
        }
        let reference = app.spec.image.reference();
        let image = normalize(&reference);
        if !self.registries.iter().any(|r| image.starts_with(r.as_str())) {
            return Err(format!(
                "images must come from an approved registry ({}); {reference} does not",
                self.registries.join(", "),
            ));
        }
        let limits = app.spec.resources.as_ref().and_then(|r| r.limits.as_ref());
        if production && limits.is_none_or(|l| l.is_empty()) {
            return Err("resource limits required in production".to_string());
        }
        Ok(())
    }
}

/// The full reference of an image as a container runtime resolves it.
fn normalize(image: &str) -> String {
    match image.split_once('/') {
        None => format!("docker.io/library/{image}"),
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => image.to_string(),
        Some(_) => format!("docker.io/{image}"),
    }
}

/// Whether the image names a version (a tag other than `latest`, or a digest).
fn pinned(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.contains('@') || last.split_once(':').is_some_and(|(_, tag)| tag != "latest")
}

fn namespace(request: &AdmissionRequest<WebApp>, app: &WebApp) -> String {
    request.namespace.clone().or_else(|| app.namespace()).unwrap_or_default()
}

impl Validator<WebApp> for WebAppPolicy {
    async fn validate(&self, request: &AdmissionRequest<WebApp>) -> Verdict {
        let Some(app) = &request.object else {
            return Verdict::allow();
        };
        let reference = app.spec.image.reference();
        match self.check(&namespace(request, app), app) {
            Ok(()) if !pinned(&reference) => Verdict::allow().warn(format!(
                "image {reference} has no tag or digest: pods may run different code after a restart"
            )),
            Ok(()) => Verdict::allow(),
            Err(message) => Verdict::deny(message),
        }
    }
}

/// The mutating policy: default labels, and a restricted security context in `production`.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebAppDefaults;

impl Mutator<WebApp> for WebAppDefaults {
    async fn mutate(&self, request: &AdmissionRequest<WebApp>, app: &mut WebApp) -> Verdict {
        let labels = app.labels_mut();
        labels.insert("managed-by".into(), "webapp-operator".into());
        labels.entry("version".into()).or_insert_with(|| "v1".into());
        if namespace(request, app) == PRODUCTION {
            let mut context =
                app.spec.security_context.clone().unwrap_or_else(opkit::security::restricted);
            context.run_as_non_root = Some(true);
            context.run_as_user.get_or_insert(1000);
            context.allow_privilege_escalation = Some(false);
            app.spec.security_context = Some(context);
        }
        Verdict::allow()
    }
}

/// `app` with the WebApp admission webhooks.
pub fn enforce(app: opkit::App, policy: WebAppPolicy) -> opkit::App {
    app.mutator::<WebApp>(WebAppDefaults).validator::<WebApp>(policy)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn references_resolve_as_a_runtime_does() {
        assert_eq!(normalize("nginx:1.21"), "docker.io/library/nginx:1.21");
        assert_eq!(normalize("bitnami/nginx"), "docker.io/bitnami/nginx");
        assert_eq!(normalize("registry.example.com/web:1"), "registry.example.com/web:1");
        assert_eq!(normalize("localhost:5000/web"), "localhost:5000/web");
    }

    #[test]
    fn only_tags_and_digests_pin_an_image() {
        use super::pinned;
        assert!(pinned("nginx:1.21") && pinned("localhost:5000/web@sha256:00"));
        assert!(!pinned("nginx") && !pinned("nginx:latest") && !pinned("localhost:5000/web"));
    }
}
