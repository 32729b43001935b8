//! The Backup custom resource: scheduled database dumps to object storage, with credentials only
//! by reference.

use opkit::k8s::*;
use opkit::prelude::*;

/// A scheduled backup of one database to one bucket, kept for `retention`.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "backup.example.com",
    version = "v1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source.type"}"#,
    printcolumn = r#"{"name":"Destination","type":"string","jsonPath":".spec.destination.type"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Last Success","type":"date","jsonPath":".status.lastSuccessfulTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[operator(
    owns(CronJob),
    watches(Secret = super::reconcile::backups_using_secret),
    index(secret = super::reconcile::secret_keys),
    rbac(group = "batch", resources = "jobs", verbs = "list"),
    requeue = "10m"
)]
pub struct BackupSpec {
    /// The database to dump.
    pub source: Source,
    /// Where the dumps go.
    pub destination: Destination,
    /// When to run, in cron syntax (five fields, or a macro such as `@daily`).
    #[schemars(regex(
        pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([0-9A-Za-z*/,?-]+ +){4}[0-9A-Za-z*/,?-]+)$"
    ))]
    pub schedule: String,
    /// How long dumps are kept: a number of hours, days or weeks (`12h`, `7d`, `4w`).
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,3}[hdw]$"))]
    pub retention: String,
}

/// The database to dump.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Source {
    /// postgresql, mysql or mongodb.
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// How to reach it; the credentials come from a Secret.
    pub connection: Connection,
}

/// Supported databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// PostgreSQL, dumped with pg_dump.
    Postgresql,
    /// MySQL, dumped with mysqldump.
    Mysql,
    /// MongoDB, dumped with mongodump.
    Mongodb,
}

/// Where the database listens and which Secret holds its credentials. There is deliberately no
/// field for a password: a strict API server refuses one, and values never enter the spec.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Host name of the database (a Service name in the same namespace works).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port; the database's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// The database to dump.
    #[schemars(length(min = 1, max = 128))]
    pub database: String,
    /// The Secret holding the user name and password.
    pub secret_ref: CredentialsRef,
}

/// Keys of a Secret in the Backup's namespace holding database credentials.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the user name.
    #[serde(default = "username_key")]
    pub username_key: String,
    /// The key holding the password.
    #[serde(default = "password_key")]
    pub password_key: String,
}

fn username_key() -> String {
    "username".to_owned()
}

fn password_key() -> String {
    "password".to_owned()
}

/// The bucket the dumps are uploaded to.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// s3, gcs or azure.
    #[serde(rename = "type")]
    pub kind: DestinationKind,
    /// The bucket (an Azure blob container for azure).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Path inside the bucket; `<namespace>/<name>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"))]
    pub prefix: Option<String>,
    /// AWS region of an s3 bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret with the provider's credentials (s3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`;
    /// gcs: `service-account.json`; azure: `AZURE_STORAGE_ACCOUNT`, `AZURE_STORAGE_KEY`).
    /// Without it, s3 and gcs use the identity of the pod's ServiceAccount; azure requires it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

/// Supported object stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// Amazon S3, with the aws CLI.
    S3,
    /// Google Cloud Storage, with gsutil.
    Gcs,
    /// Azure Blob Storage, with the az CLI.
    Azure,
}

/// A Secret in the Backup's namespace.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the operator observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// The CronJob running the backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job: Option<String>,
    /// When the last backup Job was scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// When the last backup Job succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<String>,
    /// The most recent backup Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job: Option<String>,
    /// Running, Succeeded or Failed: the outcome of `lastJob`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job_result: Option<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, LastBackupSucceeded and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
