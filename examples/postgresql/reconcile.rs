//! The PostgreSQL operator: credentials, then the servers and their Services, then — only once
//! the database is ready — scheduled backups.

use std::collections::BTreeMap;

use croner::parser::{CronParser, Seconds, Year};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;
use k8s_openapi::api::batch::v1::JobTemplateSpec;
use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, EnvVarSource, ExecAction, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Probe, SecretKeySelector, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Patch, PatchParams};
use opkit::k8s::*;
use opkit::prelude::*;
use rand::distr::{Alphanumeric, SampleString};

use super::types::PostgreSQL;

/// The database superuser the credentials Secret names.
pub const USERNAME: &str = "postgres";
/// The port every server and Service listens on.
pub const PORT: i32 = 5432;
/// The uid and gid of the `postgres` user in the official image.
const POSTGRES_UID: i64 = 999;
const PGDATA: &str = "/var/lib/postgresql/data/pgdata";

/// Replicas clone the primary once, then stream from it; the primary accepts replication
/// connections with the same password and method as clients (the image picks md5 before 14).
const START: &str = r#"set -eu
ordinal="${HOSTNAME##*-}"
echo 'echo "host replication all all $POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"' > /docker-entrypoint-initdb.d/replication.sh
if [ "$ordinal" != "0" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h "$PRIMARY_HOST" -U "$POSTGRES_USER"; do sleep 2; done
  PGPASSWORD="$POSTGRES_PASSWORD" pg_basebackup -h "$PRIMARY_HOST" -U "$POSTGRES_USER" -D "$PGDATA" -R -X stream
  chmod 0700 "$PGDATA"
fi
exec docker-entrypoint.sh postgres
"#;

/// A consistent dump of every database, written under a temporary name and renamed once
/// complete, then the dumps older than the retention removed.
const BACKUP: &str = r#"set -eu -o pipefail
file="/backups/$(date -u +%Y%m%dT%H%M%SZ).sql.gz"
pg_dumpall --clean | gzip > "$file.partial"
mv "$file.partial" "$file"
find /backups -name '*.sql.gz' -mmin "+$((RETENTION_DAYS * 1440))" -delete
"#;

impl Reconcile for PostgreSQL {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        validate(self)?;
        let live = live_servers(self, ctx).await?;
        let password = match existing_password(self, ctx).await? {
            Some(password) => password,
            None if live.is_some() => {
                return Err(opkit::Error::permanent(format!(
                    "the Secret {} holding the password the database was initialized with is gone; \
                     restore it (a new password would lock every client out)",
                    credentials_name(self)
                )));
            }
            None => ByteString(Alphanumeric.sample_string(&mut rand::rng(), 32).into_bytes()),
        };
        ctx.ensure(Credentials { db: self, password }).await?;
        // volumeClaimTemplates are immutable: the template keeps the size it was created with
        // and larger sizes are applied to the claims themselves.
        let created = live.as_ref().and_then(template_storage).map(|q| q.0);
        expand_volumes(self, ctx, created.as_deref()).await?;
        let storage = created.unwrap_or_else(|| self.spec.storage.clone());
        let servers = ctx.ensure(Servers { db: self, storage }).await?;
        ctx.ensure(PeerService(self)).await?;
        ctx.ensure(ClientService(self)).await?;

        let rollout = servers.readiness();
        let backup_name = backup_name(self);
        let scheduled = ctx.cached::<CronJob>(self.namespace().as_deref(), &backup_name).is_some();
        // Backups of a database that never started would fail every night; wait for it once.
        let backup = if !self.spec.backup.enabled {
            // Turning backups off stops new dumps; the dumps taken so far stay on their volume
            // until the database itself is deleted.
            ctx.ensure(BackupJob(self)).await?;
            false
        } else if rollout.ready || scheduled {
            ctx.ensure(BackupVolume(self)).await?;
            ctx.ensure(BackupJob(self)).await?.get().is_some()
        } else {
            false
        };

        let phase = match (rollout.ready, rollout.stalled, servers.get()) {
            (true, _, _) => "Running",
            (_, true, _) => "Failed",
            (false, false, Some(_)) => "Creating",
            (false, false, None) => "Pending",
        };
        let (reason, message) = match (self.spec.backup.enabled, backup) {
            (false, _) => ("Disabled", "backups are disabled".to_owned()),
            (true, true) => (
                "Scheduled",
                format!("CronJob {backup_name} runs at \"{}\"", self.spec.backup.schedule),
            ),
            (true, false) => {
                ("WaitingForDatabase", "backups start once the database is ready".to_owned())
            }
        };
        let endpoint =
            format!("{}.{}.svc:{PORT}", self.name_any(), self.namespace().unwrap_or_default());
        let version = self.spec.version.as_str();
        ctx.status()
            .update(|s| {
                s.ready_replicas = rollout.ready_replicas;
                s.credentials = Some(credentials_name(self));
                s.endpoint = Some(endpoint);
                if rollout.ready {
                    s.version = Some(version.to_owned());
                }
            })?
            .phase(phase)
            .readiness(phase, rollout)
            .condition("BackupScheduled", backup, reason, message);
        Ok(Action::done())
    }
}

/// What the schema cannot say: a schedule cron accepts (CEL has no cron parser). And no
/// downgrade (the data directory of a newer major version cannot be opened by an older server):
/// the CRD's rule refuses one on update, this catches objects stored before the rule existed.
fn validate(db: &PostgreSQL) -> opkit::Result<()> {
    let schedule = &db.spec.backup.schedule;
    if db.spec.backup.enabled {
        CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(schedule)
            .map_err(|e| {
                opkit::Error::invalid_spec(format!("backup schedule {schedule:?}: {e}"))
            })?;
    }
    let running = db.status.as_ref().and_then(|s| s.version.as_deref());
    let major = |v: &str| v.parse::<u32>().ok();
    let wanted = db.spec.version.as_str();
    match running.and_then(major).zip(major(wanted)) {
        Some((running, wanted)) if wanted < running => Err(opkit::Error::invalid_spec(format!(
            "version {wanted} is older than the running {running}: PostgreSQL cannot open a data \
             directory of a newer major version; restore a dump into a new database instead"
        ))),
        _ => Ok(()),
    }
}

async fn existing_password(
    db: &PostgreSQL,
    ctx: &Context<PostgreSQL>,
) -> opkit::Result<Option<ByteString>> {
    let name = credentials_name(db);
    let namespace = db.namespace();
    let secret = match ctx.cached::<Secret>(namespace.as_deref(), &name) {
        Some(secret) => Some((*secret).clone()),
        // The cache may not have seen a Secret created moments ago; the server has.
        None => ctx
            .api::<Secret>(namespace.as_deref())
            .get_opt(&name)
            .await
            .map_err(|e| opkit::Error::kube(format!("reading Secret {name}"), e))?,
    };
    Ok(secret.and_then(|s| s.data).and_then(|mut data| data.remove("password")))
}

async fn live_servers(
    db: &PostgreSQL,
    ctx: &Context<PostgreSQL>,
) -> opkit::Result<Option<StatefulSet>> {
    let name = db.name_any();
    let namespace = db.namespace();
    if let Some(live) = ctx.cached::<StatefulSet>(namespace.as_deref(), &name) {
        return Ok(Some((*live).clone()));
    }
    ctx.api::<StatefulSet>(namespace.as_deref())
        .get_opt(&name)
        .await
        .map_err(|e| opkit::Error::kube(format!("reading StatefulSet {name}"), e))
}

/// Grows the data volumes of existing replicas to `spec.storage` (the storage class must allow
/// expansion). Shrinking a volume is impossible: the CRD's transition rule refuses it on update,
/// and this refuses it for objects stored before the rule existed.
async fn expand_volumes(
    db: &PostgreSQL,
    ctx: &Context<PostgreSQL>,
    created: Option<&str>,
) -> opkit::Result<()> {
    let (Some(created), Some(wanted)) = (created.and_then(gibibytes), gibibytes(&db.spec.storage))
    else {
        return Ok(());
    };
    if wanted < created {
        return Err(opkit::Error::invalid_spec(format!(
            "storage {wanted}Gi is smaller than the {created}Gi the volumes were created with; volumes cannot shrink"
        )));
    }
    if wanted == created {
        return Ok(());
    }
    let claims = ctx.api::<PersistentVolumeClaim>(db.namespace().as_deref());
    let patch =
        serde_json::json!({"spec": {"resources": {"requests": {"storage": db.spec.storage}}}});
    for ordinal in 0..db.spec.replicas {
        let name = format!("data-{}-{ordinal}", db.name_any());
        let Some(claim) = claims
            .get_opt(&name)
            .await
            .map_err(|e| opkit::Error::kube(format!("reading PersistentVolumeClaim {name}"), e))?
        else {
            continue;
        };
        let requested = claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| gibibytes(&q.0));
        if requested.is_some_and(|r| r >= wanted) {
            continue;
        }
        claims.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| {
            opkit::Error::kube(format!("expanding PersistentVolumeClaim {name}"), e)
        })?;
    }
    Ok(())
}

fn template_storage(servers: &StatefulSet) -> Option<Quantity> {
    servers
        .spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .iter()
        .find(|t| t.metadata.name.as_deref() == Some("data"))?
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .cloned()
}

fn gibibytes(quantity: &str) -> Option<u64> {
    quantity.strip_suffix("Gi")?.parse().ok()
}

/// Name of the Secret with the database credentials.
pub fn credentials_name(db: &PostgreSQL) -> String {
    format!("{}-credentials", db.name_any())
}

fn peers_name(db: &PostgreSQL) -> String {
    format!("{}-headless", db.name_any())
}

fn backup_name(db: &PostgreSQL) -> String {
    format!("{}-backup", db.name_any())
}

fn selector(db: &PostgreSQL) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "postgresql".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), db.name_any()),
    ])
}

/// The selector labels plus the PostgreSQL's own labels, so `kubectl get all -l` finds everything.
fn labels(db: &PostgreSQL) -> BTreeMap<String, String> {
    let mut labels = db.labels().clone();
    labels.extend(selector(db));
    labels
}

/// Backup pods must not match the servers' selector, or the Services would route to them.
fn backup_labels(db: &PostgreSQL) -> BTreeMap<String, String> {
    let mut labels = db.labels().clone();
    labels.insert("app.kubernetes.io/name".to_owned(), "postgresql-backup".to_owned());
    labels.insert("app.kubernetes.io/instance".to_owned(), db.name_any());
    labels
}

fn metadata(db: &PostgreSQL, name: String) -> ObjectMeta {
    ObjectMeta { name: Some(name), labels: Some(labels(db)), ..Default::default() }
}

fn from_secret(db: &PostgreSQL, name: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: credentials_name(db),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.into()), ..Default::default() }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.to_owned(), mount_path: path.to_owned(), ..Default::default() }
}

fn scratch(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

fn image(db: &PostgreSQL) -> String {
    format!("postgres:{}", db.spec.version.as_str())
}

/// The official image switches to the `postgres` user itself; running as that user from the
/// start lets the pod meet the restricted Pod Security Standard.
fn pod_security() -> PodSecurityContext {
    opkit::security::restricted_pod(Some(POSTGRES_UID))
}

fn storage_request(size: &str) -> VolumeResourceRequirements {
    VolumeResourceRequirements {
        requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size.to_owned()))])),
        ..Default::default()
    }
}

/// The generated credentials; the password is read back from the live Secret on every
/// reconcile, so it is created once and never rotated by a reconcile.
struct Credentials<'a> {
    db: &'a PostgreSQL,
    password: ByteString,
}

impl Ensure for Credentials<'_> {
    type Object = Secret;

    fn desired(&self) -> Secret {
        let host =
            format!("{}.{}.svc", self.db.name_any(), self.db.namespace().unwrap_or_default());
        let data = BTreeMap::from([
            ("username".to_owned(), ByteString(USERNAME.as_bytes().to_vec())),
            ("password".to_owned(), self.password.clone()),
            ("host".to_owned(), ByteString(host.into_bytes())),
            ("port".to_owned(), ByteString(PORT.to_string().into_bytes())),
        ]);
        Secret {
            metadata: metadata(self.db, credentials_name(self.db)),
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Default::default()
        }
    }
}

/// The servers: a StatefulSet named after the resource, so pods are `<name>-0`, `<name>-1`, …
struct Servers<'a> {
    db: &'a PostgreSQL,
    /// The size of the volumes of new replicas.
    storage: String,
}

impl Ensure for Servers<'_> {
    type Object = StatefulSet;

    fn desired(&self) -> StatefulSet {
        let db = self.db;
        let probe = |initial: i32, period: i32| Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    "pg_isready".into(),
                    "-h".into(),
                    "127.0.0.1".into(),
                    "-U".into(),
                    USERNAME.into(),
                ]),
            }),
            initial_delay_seconds: Some(initial),
            period_seconds: Some(period),
            ..Default::default()
        };
        let container = Container {
            name: "postgres".into(),
            image: Some(image(db)),
            command: Some(vec!["bash".into(), "-c".into(), START.into()]),
            env: Some(vec![
                from_secret(db, "POSTGRES_USER", "username"),
                from_secret(db, "POSTGRES_PASSWORD", "password"),
                env("PGDATA", PGDATA),
                env("PRIMARY_HOST", format!("{}-0.{}", db.name_any(), peers_name(db))),
            ]),
            ports: Some(vec![ContainerPort {
                name: Some("postgres".into()),
                container_port: PORT,
                ..Default::default()
            }]),
            readiness_probe: Some(probe(5, 10)),
            liveness_probe: Some(probe(30, 20)),
            volume_mounts: Some(vec![
                mount("data", "/var/lib/postgresql/data"),
                mount("run", "/var/run/postgresql"),
                mount("tmp", "/tmp"),
                mount("initdb", "/docker-entrypoint-initdb.d"),
            ]),
            security_context: Some(opkit::security::restricted()),
            ..Default::default()
        };
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                labels: Some(selector(db)),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(storage_request(&self.storage)),
                ..Default::default()
            }),
            ..Default::default()
        };
        StatefulSet {
            metadata: metadata(db, db.name_any()),
            spec: Some(StatefulSetSpec {
                replicas: Some(db.spec.replicas),
                service_name: Some(peers_name(db)),
                selector: LabelSelector { match_labels: Some(selector(db)), ..Default::default() },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels(db)), ..Default::default() }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        volumes: Some(vec![scratch("run"), scratch("tmp"), scratch("initdb")]),
                        security_context: Some(pod_security()),
                        termination_grace_period_seconds: Some(60),
                        ..Default::default()
                    }),
                },
                volume_claim_templates: Some(vec![claim]),
                // Deleting the database deletes its data; scaling down keeps a replica's volume
                // so scaling back up resumes from it instead of cloning the primary again.
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some("Delete".into()),
                        when_scaled: Some("Retain".into()),
                    },
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Gives each pod a stable DNS name (`<name>-0.<name>-headless`), which replicas use to find
/// the primary; not-ready pods are published so a replica can reach a primary still starting.
struct PeerService<'a>(&'a PostgreSQL);

impl Ensure for PeerService<'_> {
    type Object = Service;

    fn desired(&self) -> Service {
        Service {
            metadata: metadata(self.0, peers_name(self.0)),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                publish_not_ready_addresses: Some(true),
                selector: Some(selector(self.0)),
                ports: Some(vec![ServicePort {
                    name: Some("postgres".into()),
                    port: PORT,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The address clients use: the primary only, since replicas are read-only.
struct ClientService<'a>(&'a PostgreSQL);

impl Ensure for ClientService<'_> {
    type Object = Service;

    fn desired(&self) -> Service {
        let mut primary = selector(self.0);
        primary.insert(
            "statefulset.kubernetes.io/pod-name".into(),
            format!("{}-0", self.0.name_any()),
        );
        Service {
            metadata: metadata(self.0, self.0.name_any()),
            spec: Some(ServiceSpec {
                selector: Some(primary),
                ports: Some(vec![ServicePort {
                    name: Some("postgres".into()),
                    port: PORT,
                    target_port: Some(IntOrString::Int(PORT)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Where the dumps are kept, apart from the servers' volumes.
struct BackupVolume<'a>(&'a PostgreSQL);

impl Ensure for BackupVolume<'_> {
    type Object = PersistentVolumeClaim;

    fn desired(&self) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: metadata(self.0, backup_name(self.0)),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(storage_request(&self.0.spec.storage)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

struct BackupJob<'a>(&'a PostgreSQL);

impl Ensure for BackupJob<'_> {
    type Object = CronJob;

    fn desired(&self) -> CronJob {
        let db = self.0;
        let days = db.spec.backup.retention.trim_end_matches('d');
        let container = Container {
            name: "backup".into(),
            image: Some(image(db)),
            command: Some(vec!["bash".into(), "-c".into(), BACKUP.into()]),
            env: Some(vec![
                env("PGHOST", db.name_any()),
                from_secret(db, "PGUSER", "username"),
                from_secret(db, "PGPASSWORD", "password"),
                env("RETENTION_DAYS", days),
            ]),
            volume_mounts: Some(vec![mount("backups", "/backups")]),
            security_context: Some(opkit::security::restricted()),
            ..Default::default()
        };
        let volume = Volume {
            name: "backups".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: backup_name(db),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = PodSpec {
            containers: vec![container],
            volumes: Some(vec![volume]),
            restart_policy: Some("OnFailure".into()),
            security_context: Some(pod_security()),
            ..Default::default()
        };
        CronJob {
            metadata: metadata(db, backup_name(db)),
            spec: Some(CronJobSpec {
                schedule: db.spec.backup.schedule.clone(),
                // Two dumps at once would double the load and race on the retention sweep.
                concurrency_policy: Some("Forbid".into()),
                successful_jobs_history_limit: Some(3),
                failed_jobs_history_limit: Some(1),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(backup_labels(db)),
                        ..Default::default()
                    }),
                    spec: Some(JobSpec {
                        backoff_limit: Some(2),
                        template: PodTemplateSpec {
                            metadata: Some(ObjectMeta {
                                labels: Some(backup_labels(db)),
                                ..Default::default()
                            }),
                            spec: Some(pod),
                        },
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn enabled(&self) -> bool {
        self.0.spec.backup.enabled
    }
}
