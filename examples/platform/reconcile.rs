//! The EcommercePlatform operator: database → cache → backend → frontend, each created only once
//! what it needs is ready, then monitoring and the Ingress; defaults from the environment.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, EnvVarSource, HTTPGetAction, Probe, SecretKeySelector,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use opkit::k8s::*;
use opkit::prelude::*;

use super::monitoring::{
    AlertRule, PrometheusRule, PrometheusRuleSpec, RuleGroup, ScrapeEndpoint, ServiceMonitor,
    ServiceMonitorSpec,
};
use super::types::{DatabaseType, EcommercePlatform, Endpoints, Environment};
use crate::postgresql::reconcile::{PORT as DATABASE_PORT, credentials_name};
use crate::postgresql::types::{BackupSpec, PostgreSQL, PostgreSQLSpec, PostgresVersion};

/// The label on every object of a platform (`kubectl get all -l platform=<name>`).
pub const PLATFORM_LABEL: &str = "platform";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
const HTTP_PORT: i32 = 8080;
const REDIS_PORT: i32 = 6379;
const MONITORING_GROUP: &str = "monitoring.coreos.com/v1";

/// What an environment implies for everything the spec leaves out.
struct Defaults {
    database_replicas: i32,
    storage: &'static str,
    backups: bool,
    replicas: i32,
}

fn defaults(environment: Environment) -> Defaults {
    match environment {
        Environment::Production => {
            Defaults { database_replicas: 3, storage: "100Gi", backups: true, replicas: 3 }
        }
        Environment::Staging => {
            Defaults { database_replicas: 2, storage: "50Gi", backups: true, replicas: 2 }
        }
        Environment::Development => {
            Defaults { database_replicas: 1, storage: "10Gi", backups: false, replicas: 1 }
        }
    }
}

impl Reconcile for EcommercePlatform {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        if self.spec.database.type_ == DatabaseType::Mysql {
            return Err(opkit::Error::invalid_spec(
                "database type mysql is not supported: no MySQL operator runs beside this one; use postgresql",
            ));
        }
        let name = self.name_any();
        let ns = self.namespace();
        let exists =
            |deployment: &str| ctx.cached::<Deployment>(ns.as_deref(), deployment).is_some();
        let status = ctx.status();
        let mut endpoints = Endpoints::default();

        let database = ctx.ensure(Database(self)).await?;
        let database_ready = database.is_ready();
        let db = database_name(self);
        status.condition(
            "Database",
            database_ready,
            ready_reason(database_ready),
            match database_ready {
                true => format!("PostgreSQL {db} is ready"),
                false => format!("waiting for PostgreSQL {db} to become ready"),
            },
        );
        endpoints.database = Some(format!("{db}:{DATABASE_PORT}"));

        let cache = ctx.ensure(Cache(self)).await?;
        ctx.ensure(ServiceFor { platform: self, tier: Tier::Cache }).await?;
        let cache_ready = !self.spec.cache.enabled || cache.is_ready();
        if self.spec.cache.enabled {
            endpoints.cache = Some(format!("redis://{}:{REDIS_PORT}", Tier::Cache.name(self)));
            status.condition(
                "Cache",
                cache_ready,
                ready_reason(cache_ready),
                &cache.readiness().message,
            );
        } else {
            status.condition("Cache", false, "Disabled", "the cache is disabled");
        }

        // The backend cannot start without its database and cache; once it exists it is kept
        // up to date even while they roll.
        let mut backend_ready = false;
        if (database_ready && cache_ready) || exists(&Tier::Backend.name(self)) {
            let backend = ctx.ensure(App { platform: self, tier: Tier::Backend }).await?;
            ctx.ensure(ServiceFor { platform: self, tier: Tier::Backend }).await?;
            backend_ready = backend.is_ready();
            endpoints.backend = Some(format!("http://{}:{HTTP_PORT}", Tier::Backend.name(self)));
            status.condition(
                "Backend",
                backend_ready,
                ready_reason(backend_ready),
                &backend.readiness().message,
            );
        } else {
            status.condition(
                "Backend",
                false,
                "WaitingForDependencies",
                "waiting for the database and cache",
            );
        }

        let mut frontend_ready = false;
        if backend_ready || exists(&Tier::Frontend.name(self)) {
            let frontend = ctx.ensure(App { platform: self, tier: Tier::Frontend }).await?;
            ctx.ensure(ServiceFor { platform: self, tier: Tier::Frontend }).await?;
            frontend_ready = frontend.is_ready();
            endpoints.frontend = Some(format!("http://{}", Tier::Frontend.name(self)));
            status.condition(
                "Frontend",
                frontend_ready,
                ready_reason(frontend_ready),
                &frontend.readiness().message,
            );
        } else {
            status.condition("Frontend", false, "WaitingForBackend", "waiting for the backend");
        }

        monitoring(self, ctx).await?;

        let opened = ctx.cached::<Ingress>(ns.as_deref(), &name).is_some();
        let ingress = ctx.ensure(Entry { platform: self, open: frontend_ready || opened }).await?;
        if ingress.get().is_some() {
            endpoints.ingress =
                self.spec.ingress.host.as_ref().map(|host| format!("http://{host}/"));
            status.condition(
                "Ingress",
                true,
                "Created",
                format!("Ingress {name} routes / and /api"),
            );
        } else {
            status.condition(
                "Ingress",
                false,
                "WaitingForFrontend",
                "the Ingress opens once the frontend is ready",
            );
        }

        let ready = database_ready
            && cache_ready
            && backend_ready
            && frontend_ready
            && ingress.get().is_some();
        let (phase, message) = match ready {
            true => ("Running", "every component is ready"),
            false => ("Deploying", "components are starting in dependency order"),
        };
        status.update(|s| s.endpoints = Some(endpoints))?.phase(phase).ready(ready, phase, message);
        Ok(Action::done())
    }
}

fn ready_reason(ready: bool) -> &'static str {
    if ready { "Ready" } else { "NotReady" }
}

/// ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs; without them the
/// platform still runs and says monitoring was skipped.
async fn monitoring(
    platform: &EcommercePlatform,
    ctx: &Context<EcommercePlatform>,
) -> opkit::Result<()> {
    let served = match ctx.client().list_api_group_resources(MONITORING_GROUP).await {
        Ok(list) => {
            let has = |plural: &str| list.resources.iter().any(|r| r.name == plural);
            has("servicemonitors") && has("prometheusrules")
        }
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => return Err(opkit::Error::kube(format!("discovering {MONITORING_GROUP}"), e)),
    };
    let status = ctx.status();
    if !platform.spec.monitoring.enabled {
        status.condition("Monitoring", false, "Disabled", "monitoring is disabled");
    } else if !served {
        status.condition(
            "Monitoring",
            false,
            "Skipped",
            format!("the Prometheus Operator's CRDs ({MONITORING_GROUP} servicemonitors, prometheusrules) are not installed; no monitoring objects were created"),
        );
    } else {
        status.condition(
            "Monitoring",
            true,
            "Configured",
            "ServiceMonitor and PrometheusRule created",
        );
    }
    if served {
        ctx.ensure(Scrape(platform)).await?;
        ctx.ensure(Alerts(platform)).await?;
    }
    Ok(())
}

fn database_name(platform: &EcommercePlatform) -> String {
    format!("{}-db", platform.name_any())
}

#[derive(Clone, Copy)]
enum Tier {
    Cache,
    Backend,
    Frontend,
}

impl Tier {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::Backend => "backend",
            Self::Frontend => "frontend",
        }
    }

    fn name(self, platform: &EcommercePlatform) -> String {
        format!("{}-{}", platform.name_any(), self.as_str())
    }

    /// The Service's port and the container's.
    fn ports(self) -> (i32, i32) {
        match self {
            Self::Cache => (REDIS_PORT, REDIS_PORT),
            Self::Backend => (HTTP_PORT, HTTP_PORT),
            Self::Frontend => (80, HTTP_PORT),
        }
    }
}

fn platform_labels(platform: &EcommercePlatform) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PLATFORM_LABEL.to_owned(), platform.name_any()),
        ("app.kubernetes.io/part-of".to_owned(), "ecommerce-platform".to_owned()),
    ])
}

fn selector(platform: &EcommercePlatform, tier: Tier) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PLATFORM_LABEL.to_owned(), platform.name_any()),
        (COMPONENT_LABEL.to_owned(), tier.as_str().to_owned()),
    ])
}

fn labels(platform: &EcommercePlatform, tier: Tier) -> BTreeMap<String, String> {
    let mut labels = platform_labels(platform);
    labels.extend(selector(platform, tier));
    labels
}

fn metadata(name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta { name: Some(name), labels: Some(labels), ..Default::default() }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.into()), ..Default::default() }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn deployment(
    platform: &EcommercePlatform,
    tier: Tier,
    replicas: i32,
    container: Container,
    volumes: Vec<Volume>,
    run_as_user: Option<i64>,
) -> Deployment {
    let labels = labels(platform, tier);
    Deployment {
        metadata: metadata(tier.name(platform), labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector(platform, tier)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        security_context: Some(opkit::security::restricted()),
                        ..container
                    }],
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    security_context: Some(opkit::security::restricted_pod(run_as_user)),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The database as a PostgreSQL resource, left to the PostgreSQL operator; the environment
/// decides what the spec leaves out.
struct Database<'a>(&'a EcommercePlatform);

impl Ensure for Database<'_> {
    type Object = PostgreSQL;

    fn desired(&self) -> PostgreSQL {
        let platform = self.0;
        let wanted = &platform.spec.database;
        let d = defaults(platform.spec.environment);
        let spec = PostgreSQLSpec {
            version: wanted.version.unwrap_or(PostgresVersion::V16),
            storage: wanted.storage.clone().unwrap_or_else(|| d.storage.to_owned()),
            replicas: wanted.replicas.unwrap_or(d.database_replicas),
            backup: BackupSpec {
                enabled: wanted.backups.unwrap_or(d.backups),
                ..BackupSpec::default()
            },
        };
        let mut labels = platform_labels(platform);
        labels.insert(COMPONENT_LABEL.to_owned(), "database".to_owned());
        PostgreSQL { metadata: metadata(database_name(platform), labels), spec, status: None }
    }
}

/// Redis as a cache only: no persistence, so a restart starts empty rather than slow.
struct Cache<'a>(&'a EcommercePlatform);

impl Ensure for Cache<'_> {
    type Object = Deployment;

    fn desired(&self) -> Deployment {
        let container = Container {
            name: "redis".into(),
            image: Some("redis:7-alpine".into()),
            args: Some(vec!["--save".into(), String::new(), "--appendonly".into(), "no".into()]),
            ports: Some(vec![ContainerPort {
                name: Some("redis".into()),
                container_port: REDIS_PORT,
                ..Default::default()
            }]),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: "/data".into(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let data = Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        };
        // The image's redis user: its default user is root, which runAsNonRoot refuses.
        deployment(self.0, Tier::Cache, 1, container, vec![data], Some(999))
    }

    fn enabled(&self) -> bool {
        self.0.spec.cache.enabled
    }
}

/// The backend or the frontend.
struct App<'a> {
    platform: &'a EcommercePlatform,
    tier: Tier,
}

impl Ensure for App<'_> {
    type Object = Deployment;

    fn desired(&self) -> Deployment {
        let platform = self.platform;
        let d = defaults(platform.spec.environment);
        let (spec, mut vars) = match self.tier {
            Tier::Frontend => (
                &platform.spec.frontend,
                vec![env(
                    "BACKEND_URL",
                    format!("http://{}:{HTTP_PORT}", Tier::Backend.name(platform)),
                )],
            ),
            _ => {
                let secret = credentials_name_of(platform);
                let mut vars = vec![
                    env("DATABASE_HOST", database_name(platform)),
                    env("DATABASE_PORT", DATABASE_PORT.to_string()),
                    secret_env("DATABASE_USER", &secret, "username"),
                    secret_env("DATABASE_PASSWORD", &secret, "password"),
                ];
                if platform.spec.cache.enabled {
                    vars.push(env(
                        "REDIS_URL",
                        format!("redis://{}:{REDIS_PORT}", Tier::Cache.name(platform)),
                    ));
                }
                (&platform.spec.backend, vars)
            }
        };
        vars.push(env("ENVIRONMENT", platform.spec.environment.as_str()));
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            period_seconds: Some(10),
            ..Default::default()
        };
        let container = Container {
            name: self.tier.as_str().into(),
            image: Some(spec.image.clone()),
            env: Some(vars),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: HTTP_PORT,
                ..Default::default()
            }]),
            readiness_probe: Some(probe),
            ..Default::default()
        };
        let tmp = Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        };
        let container = Container {
            volume_mounts: Some(vec![VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            }]),
            ..container
        };
        deployment(
            platform,
            self.tier,
            spec.replicas.unwrap_or(d.replicas),
            container,
            vec![tmp],
            None,
        )
    }
}

fn credentials_name_of(platform: &EcommercePlatform) -> String {
    credentials_name(&Database(platform).desired())
}

struct ServiceFor<'a> {
    platform: &'a EcommercePlatform,
    tier: Tier,
}

impl Ensure for ServiceFor<'_> {
    type Object = Service;

    fn desired(&self) -> Service {
        let (port, target) = self.tier.ports();
        let port_name = match self.tier {
            Tier::Cache => "redis",
            _ => "http",
        };
        Service {
            metadata: metadata(self.tier.name(self.platform), labels(self.platform, self.tier)),
            spec: Some(ServiceSpec {
                selector: Some(selector(self.platform, self.tier)),
                ports: Some(vec![ServicePort {
                    name: Some(port_name.into()),
                    port,
                    target_port: Some(IntOrString::Int(target)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn enabled(&self) -> bool {
        match self.tier {
            Tier::Cache => self.platform.spec.cache.enabled,
            _ => true,
        }
    }
}

/// `/api` to the backend, everything else to the frontend; opened only once the frontend is
/// ready, so users never see a half-deployed shop.
struct Entry<'a> {
    platform: &'a EcommercePlatform,
    open: bool,
}

impl Ensure for Entry<'_> {
    type Object = Ingress;

    fn desired(&self) -> Ingress {
        let platform = self.platform;
        let path = |prefix: &str, tier: Tier| HTTPIngressPath {
            path: Some(prefix.into()),
            path_type: "Prefix".into(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: tier.name(platform),
                    port: Some(ServiceBackendPort {
                        number: Some(tier.ports().0),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            },
        };
        let rule = IngressRule {
            host: platform.spec.ingress.host.clone(),
            http: Some(HTTPIngressRuleValue {
                paths: vec![path("/api", Tier::Backend), path("/", Tier::Frontend)],
            }),
        };
        Ingress {
            metadata: metadata(platform.name_any(), platform_labels(platform)),
            spec: Some(IngressSpec {
                ingress_class_name: platform.spec.ingress.class_name.clone(),
                rules: Some(vec![rule]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn enabled(&self) -> bool {
        self.open
    }
}

struct Scrape<'a>(&'a EcommercePlatform);

impl Ensure for Scrape<'_> {
    type Object = ServiceMonitor;

    fn desired(&self) -> ServiceMonitor {
        let platform = self.0;
        let spec = ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(selector(platform, Tier::Backend)),
                ..Default::default()
            },
            endpoints: vec![ScrapeEndpoint {
                port: "http".into(),
                path: "/metrics".into(),
                interval: "30s".into(),
            }],
        };
        ServiceMonitor { metadata: metadata(platform.name_any(), platform_labels(platform)), spec }
    }

    fn enabled(&self) -> bool {
        self.0.spec.monitoring.enabled
    }
}

struct Alerts<'a>(&'a EcommercePlatform);

impl Ensure for Alerts<'_> {
    type Object = PrometheusRule;

    fn desired(&self) -> PrometheusRule {
        let platform = self.0;
        let name = platform.name_any();
        let ns = platform.namespace().unwrap_or_default();
        let severity = match platform.spec.environment {
            Environment::Production => "critical",
            _ => "warning",
        };
        let alert = |alert: &str, expr: String, summary: &str| AlertRule {
            alert: alert.into(),
            expr,
            for_: "5m".into(),
            labels: BTreeMap::from([("severity".to_owned(), severity.to_owned())]),
            annotations: BTreeMap::from([("summary".to_owned(), format!("{name}: {summary}"))]),
        };
        let backend = Tier::Backend.name(platform);
        let rules = vec![
            alert(
                "EcommerceBackendDown",
                format!("absent(up{{namespace=\"{ns}\",service=\"{backend}\"}} == 1)"),
                "no backend pod is scraped",
            ),
            alert(
                "EcommerceBackendErrors",
                format!(
                    "sum(rate(http_requests_total{{namespace=\"{ns}\",service=\"{backend}\",code=~\"5..\"}}[5m])) \
                     / sum(rate(http_requests_total{{namespace=\"{ns}\",service=\"{backend}\"}}[5m])) > 0.05"
                ),
                "more than 5% of backend requests fail",
            ),
        ];
        PrometheusRule {
            metadata: metadata(name.clone(), platform_labels(platform)),
            spec: PrometheusRuleSpec {
                groups: vec![RuleGroup { name: format!("{name}.rules"), rules }],
            },
        }
    }

    fn enabled(&self) -> bool {
        self.0.spec.monitoring.enabled
    }
}
