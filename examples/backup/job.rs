//! What a backup Job runs: the database's own dump tool in an init container writing to a
//! scratch volume, then the provider's CLI uploading the dump and enforcing retention.
//!
//! Two official images instead of one custom image holding both tools: the dump tool comes from
//! the database's image, the CLI from the provider's, and neither has to be rebuilt when the other
//! is patched. The dump is compressed on its way to the scratch volume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, EnvVarSource, KeyToPath, SecretKeySelector, SecretVolumeSource,
};
use opkit::k8s::*;
use opkit::prelude::*;

use super::types::{Backup, DestinationKind, SourceKind};

/// Label carried by the Jobs of a Backup, so their outcome can be listed.
pub const BACKUP_LABEL: &str = "backup.example.com/name";

const DUMP_DIR: &str = "/backup";
const SCRATCH_DIR: &str = "/tmp";
const GCS_KEY_DIR: &str = "/var/run/secrets/backup/gcs";
/// Unprivileged user of both containers (the images default to root).
const USER: i64 = 65532;

/// How one database is dumped.
struct DumpTool {
    port: i32,
    image: &'static str,
    extension: &'static str,
    /// The variable the tool reads the password from.
    password_var: &'static str,
    script: &'static str,
}

fn dump_tool(kind: SourceKind) -> DumpTool {
    match kind {
        SourceKind::Postgresql => DumpTool {
            port: 5432,
            image: "postgres:17-alpine",
            extension: "pgdump",
            password_var: "PGPASSWORD",
            script: r#"pg_dump --host="$DB_HOST" --port="$DB_PORT" --username="$DB_USER" --dbname="$DB_NAME" --format=custom --compress=6 --file=/backup/dump"#,
        },
        // mysqldump and mongodump take a password on their command line, in a deprecated variable
        // or in an option file: the file keeps it out of the process list.
        SourceKind::Mysql => DumpTool {
            port: 3306,
            image: "mysql:8.4",
            extension: "sql.gz",
            password_var: "DB_PASSWORD",
            script: r#"printf '[client]\npassword="%s"\n' "$(printf '%s' "$DB_PASSWORD" | sed 's/\\/\\\\/g; s/"/\\"/g')" > /tmp/my.cnf
mysqldump --defaults-extra-file=/tmp/my.cnf --host="$DB_HOST" --port="$DB_PORT" --user="$DB_USER" --single-transaction --routines --events --result-file=/backup/dump.sql "$DB_NAME"
gzip -c /backup/dump.sql > /backup/dump && rm /backup/dump.sql"#,
        },
        SourceKind::Mongodb => DumpTool {
            port: 27017,
            image: "mongo:8.0",
            extension: "archive.gz",
            password_var: "DB_PASSWORD",
            script: r#"{ printf "password: '"; printf '%s' "$DB_PASSWORD" | sed "s/'/''/g"; printf "'\n"; } > /tmp/mongodump.yaml
mongodump --config=/tmp/mongodump.yaml --host="$DB_HOST" --port="$DB_PORT" --username="$DB_USER" --authenticationDatabase=admin --db="$DB_NAME" --gzip --archive=/backup/dump"#,
        },
    }
}

/// Upload image and the `upload`, `list` and `remove` shell functions of each provider.
fn destination_profile(kind: DestinationKind) -> (&'static str, &'static str) {
    match kind {
        DestinationKind::S3 => (
            "amazon/aws-cli:2.22.35",
            r#"upload() { aws s3 cp --only-show-errors "$1" "s3://$BUCKET/$PREFIX/$2"; }
list() { aws s3 ls "s3://$BUCKET/$PREFIX/" | awk '{print $4}'; }
remove() { aws s3 rm --only-show-errors "s3://$BUCKET/$PREFIX/$1"; }"#,
        ),
        DestinationKind::Gcs => (
            "gcr.io/google.com/cloudsdktool/google-cloud-cli:502.0.0-slim",
            r#"if [ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]; then gcloud auth activate-service-account --quiet --key-file="$GOOGLE_APPLICATION_CREDENTIALS"; fi
upload() { gsutil -q cp "$1" "gs://$BUCKET/$PREFIX/$2"; }
list() { gsutil ls "gs://$BUCKET/$PREFIX/" | sed 's|.*/||'; }
remove() { gsutil -q rm "gs://$BUCKET/$PREFIX/$1"; }"#,
        ),
        DestinationKind::Azure => (
            "mcr.microsoft.com/azure-cli:2.67.0",
            r#"upload() { az storage blob upload --only-show-errors --container-name "$BUCKET" --name "$PREFIX/$2" --file "$1"; }
list() { az storage blob list --only-show-errors --container-name "$BUCKET" --prefix "$PREFIX/" --query "[].name" --output tsv | sed 's|.*/||'; }
remove() { az storage blob delete --only-show-errors --container-name "$BUCKET" --name "$PREFIX/$1"; }"#,
        ),
    }
}

/// Uploads the dump under a timestamped name, then deletes this Backup's dumps (and only those:
/// names made of a timestamp) older than the retention. Retention runs only after a successful
/// upload, so failing backups never delete the last good one.
pub const UPLOAD: &str = r#"name="$(date -u +%Y%m%dT%H%M%SZ).$EXT"
cutoff="$(date -u -d "@$(( $(date +%s) - RETENTION_SECONDS ))" +%Y%m%dT%H%M%SZ)"
upload /backup/dump "$name"
echo "uploaded $PREFIX/$name"
list | grep -E '^[0-9]{8}T[0-9]{6}Z[.]' | awk -v cutoff="$cutoff" 'substr($0, 1, 16) < cutoff' | while read -r old; do
  remove "$old"
  echo "deleted $PREFIX/$old (older than $RETENTION)"
done"#;

/// The retention in seconds (`7d` → 604800); the CRD's pattern guarantees the shape.
pub fn retention_seconds(retention: &str) -> Option<u64> {
    let unit = match retention.chars().last()? {
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    let count: u64 = retention.get(..retention.len() - 1)?.parse().ok()?;
    count.checked_mul(unit)
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.into()), ..Default::default() }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    let selector =
        SecretKeySelector { name: secret.to_owned(), key: key.to_owned(), optional: Some(false) };
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource { secret_key_ref: Some(selector), ..Default::default() }),
        ..Default::default()
    }
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

fn shell(script: &str) -> Option<Vec<String>> {
    Some(vec!["/bin/sh".to_owned(), "-ec".to_owned(), script.to_owned()])
}

/// The destination keys the Secret must hold, and the variables they become.
pub fn destination_keys(kind: DestinationKind) -> &'static [&'static str] {
    match kind {
        DestinationKind::S3 => &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        DestinationKind::Gcs => &["service-account.json"],
        DestinationKind::Azure => &["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"],
    }
}

/// The prefix inside the bucket.
pub fn prefix(backup: &Backup) -> String {
    let default = || format!("{}/{}", backup.namespace().unwrap_or_default(), backup.name_any());
    backup.spec.destination.prefix.clone().unwrap_or_else(default)
}

/// The pod template of the backup Jobs.
pub fn pod_template(backup: &Backup, retention_seconds: u64) -> PodTemplateSpec {
    let spec = &backup.spec;
    let connection = &spec.source.connection;
    let credentials = &connection.secret_ref;
    let tool = dump_tool(spec.source.kind);
    let (upload_image, functions) = destination_profile(spec.destination.kind);
    let dump_container = Container {
        name: "dump".to_owned(),
        image: Some(tool.image.to_owned()),
        command: shell(tool.script),
        env: Some(vec![
            env("DB_HOST", connection.host.clone()),
            env("DB_PORT", connection.port.unwrap_or(tool.port).to_string()),
            env("DB_NAME", connection.database.clone()),
            secret_env("DB_USER", &credentials.name, &credentials.username_key),
            secret_env(tool.password_var, &credentials.name, &credentials.password_key),
            env("HOME", SCRATCH_DIR),
        ]),
        volume_mounts: Some(vec![mount("dump", DUMP_DIR), mount("scratch", SCRATCH_DIR)]),
        security_context: Some(opkit::security::restricted()),
        ..Default::default()
    };
    let mut upload_env = vec![
        env("BUCKET", spec.destination.bucket.clone()),
        env("PREFIX", prefix(backup)),
        env("EXT", tool.extension),
        env("RETENTION", spec.retention.clone()),
        env("RETENTION_SECONDS", retention_seconds.to_string()),
        env("HOME", SCRATCH_DIR),
        env("CLOUDSDK_CONFIG", format!("{SCRATCH_DIR}/gcloud")),
        env("AZURE_CONFIG_DIR", format!("{SCRATCH_DIR}/azure")),
    ];
    if let Some(region) = &spec.destination.region {
        upload_env.push(env("AWS_DEFAULT_REGION", region.clone()));
    }
    let mut upload_mounts = vec![mount("dump", DUMP_DIR), mount("scratch", SCRATCH_DIR)];
    let mut volumes = vec![scratch("dump"), scratch("scratch")];
    if let Some(secret) = &spec.destination.secret_ref {
        match spec.destination.kind {
            DestinationKind::Gcs => {
                let key = "service-account.json";
                volumes.push(Volume {
                    name: "gcs-key".to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(secret.name.clone()),
                        items: Some(vec![KeyToPath {
                            key: key.to_owned(),
                            path: key.to_owned(),
                            mode: None,
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                upload_mounts
                    .push(VolumeMount { read_only: Some(true), ..mount("gcs-key", GCS_KEY_DIR) });
                upload_env
                    .push(env("GOOGLE_APPLICATION_CREDENTIALS", format!("{GCS_KEY_DIR}/{key}")));
            }
            kind => {
                upload_env.extend(
                    destination_keys(kind).iter().map(|key| secret_env(key, &secret.name, key)),
                );
            }
        }
    }
    let upload_container = Container {
        name: "upload".to_owned(),
        image: Some(upload_image.to_owned()),
        command: shell(&format!("{functions}\n{UPLOAD}")),
        env: Some(upload_env),
        volume_mounts: Some(upload_mounts),
        security_context: Some(opkit::security::restricted()),
        ..Default::default()
    };
    let labels = BTreeMap::from([
        (BACKUP_LABEL.to_owned(), backup.name_any()),
        ("app.kubernetes.io/managed-by".to_owned(), "backup-operator".to_owned()),
    ]);
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
        spec: Some(PodSpec {
            restart_policy: Some("OnFailure".to_owned()),
            init_containers: Some(vec![dump_container]),
            containers: vec![upload_container],
            volumes: Some(volumes),
            security_context: Some(opkit::security::restricted_pod(Some(USER))),
            ..Default::default()
        }),
    }
}
