//! The admission policies for WebApps.
//!
//! Validating, as ValidatingAdmissionPolicies the API server evaluates itself ([`admission`]): at
//! most `max_production_replicas` (10) replicas in the `production` namespace, images only from
//! the approved registries, resource limits required in `production`, from the parameters in
//! the ConfigMap `webapp-policy`; and a warning for an image without a tag or digest
//! ([`pinned_images`]). Mutating, as an admission webhook since CEL cannot change an object: the
//! labels `managed-by` and `version`, and a restricted security context in `production`.
//!
//! The policies match both served versions, so the API server evaluates each request in the
//! version it was made in; their expressions read the image and the replica count from either
//! shape (`v1`: `spec.image`, `spec.replicas`; `v2`: `spec.image.repository`/`tag`/`digest`,
//! `spec.scale.replicas`).

use opkit::k8s::{ConfigMap, ObjectMeta};
use opkit::policy::{Binding, Enforcement, Policy, Validation};
use opkit::prelude::*;
use opkit::webhook::{AdmissionRequest, Mutator, Verdict};

use super::types::WebApp;
use super::v1;

/// The namespace the stricter rules apply to.
pub const PRODUCTION: &str = "production";

/// The environment variable listing approved registries, comma-separated.
pub const REGISTRIES_ENV: &str = "WEBAPP_APPROVED_REGISTRIES";

/// The environment variable with the replica cap in `production`.
pub const MAX_REPLICAS_ENV: &str = "WEBAPP_MAX_PRODUCTION_REPLICAS";

/// The name of the validating policy, its binding and its parameter ConfigMap.
pub const POLICY: &str = "webapp-policy";

/// The name of the policy warning about unpinned images, and of its binding.
pub const PINNED_IMAGES: &str = "webapp-pinned-images";

/// The settings of the validating policy: its parameters.
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
            .map(|r| r.into().trim().trim_end_matches('/').to_owned())
            .filter(|r| !r.is_empty())
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

    /// The parameter ConfigMap `webapp-policy`: `registries` (comma-separated) and
    /// `maxProductionReplicas`. Editing it on the cluster changes the policy at once.
    pub fn params(&self) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some(POLICY.into()), ..Default::default() },
            data: Some(
                [
                    ("registries".to_owned(), self.registries.join(",")),
                    ("maxProductionReplicas".to_owned(), self.max_production_replicas.to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        }
    }
}

/// The image reference of a WebApp in either version.
const IMAGE: &str = "object.apiVersion == 'example.com/v1' ? object.spec.image \
     : object.spec.image.repository \
     + (has(object.spec.image.tag) ? ':' + object.spec.image.tag : '') \
     + (has(object.spec.image.digest) ? '@' + object.spec.image.digest : '')";

/// The replica count of a WebApp in either version.
const REPLICAS: &str =
    "object.apiVersion == 'example.com/v1' ? object.spec.replicas : object.spec.scale.replicas";

/// The validating policy `webapp-policy`, denying with the reasons the webhook used to give.
///
/// An image reference is resolved as a container runtime resolves it: `nginx` is
/// `docker.io/library/nginx`, `bitnami/nginx` is `docker.io/bitnami/nginx`, and a first part
/// with a dot, a colon or `localhost` is a registry.
pub fn admission(settings: &WebAppPolicy) -> Policy {
    Policy::new(POLICY)
        .on::<WebApp>()
        .on::<v1::WebApp>()
        .params(settings.params())
        .variable("production", "request.namespace == 'production'")
        .variable("image", IMAGE)
        .variable("replicas", REPLICAS)
        .variable("first", "variables.image.split('/')[0]")
        .variable(
            "reference",
            "!variables.image.contains('/') ? 'docker.io/library/' + variables.image \
             : (variables.first.contains('.') || variables.first.contains(':') || variables.first == 'localhost') \
             ? variables.image : 'docker.io/' + variables.image",
        )
        .variable(
            "registries",
            "params.data.registries.split(',').map(r, r.trim()).filter(r, r != '')",
        )
        .validation(
            Validation::new(
                "!variables.production || variables.replicas <= int(params.data.maxProductionReplicas)",
            )
            .message_expression(
                "'production workloads cannot exceed ' + params.data.maxProductionReplicas + ' replicas'",
            )
            .reason("Forbidden"),
        )
        .validation(
            Validation::new("variables.registries.exists(r, variables.reference.startsWith(r + '/'))")
                .message_expression(
                    "'images must come from an approved registry (' + variables.registries.join(', ') \
                     + '); ' + variables.image + ' does not'",
                )
                .reason("Forbidden"),
        )
        .validation(
            Validation::new(
                "!variables.production || (has(object.spec.resources) \
                 && has(object.spec.resources.limits) && size(object.spec.resources.limits) > 0)",
            )
            .message("resource limits required in production")
            .reason("Forbidden"),
        )
        .binding(Binding::new(POLICY).param(POLICY))
}

/// A warning, never a denial, for an image without a tag (or with `latest`) or digest: its pods
/// may run different code after a restart.
pub fn pinned_images() -> Policy {
    Policy::new(PINNED_IMAGES)
        .on::<WebApp>()
        .on::<v1::WebApp>()
        .variable("image", IMAGE)
        .variable("name", "variables.image.substring(variables.image.lastIndexOf('/') + 1)")
        .validation(
            Validation::new(
                "variables.name.contains('@') \
                 || (variables.name.contains(':') && !variables.name.endsWith(':latest'))",
            )
            .message_expression(
                "'image ' + variables.image + ' has no tag or digest: pods may run different code after a restart'",
            ),
        )
        .binding(Binding::new(PINNED_IMAGES).enforce(&[Enforcement::Warn]))
}

fn namespace(request: &AdmissionRequest<WebApp>, app: &WebApp) -> String {
    request.namespace.clone().or_else(|| app.namespace()).unwrap_or_default()
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

/// `app` with the WebApp admission policies and its mutating webhook.
pub fn enforce(app: opkit::App, settings: WebAppPolicy) -> opkit::App {
    app.mutator::<WebApp>(WebAppDefaults).policy(admission(&settings)).policy(pinned_images())
}
