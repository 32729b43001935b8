//! The PostgreSQL custom resource: a replicated database with credentials and scheduled backups.

use opkit::k8s::*;
use opkit::prelude::*;

/// A PostgreSQL database: a StatefulSet of the official image with generated credentials,
/// Services for clients and peers, and scheduled backups once it is ready.
// Two CEL rules guard the data: `storage` only grows (a transition rule on `oldSelf`: volumes
// cannot shrink), and `version` never goes below the major the servers last ran ready
// (`status.version`: an older server cannot open a newer data directory). The API server refuses
// such an update outright instead of the operator reporting it after the fact.
#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "database.example.com",
    version = "v1",
    kind = "PostgreSQL",
    plural = "postgresqls",
    namespaced,
    status = "PostgreSQLStatus",
    shortname = "pg",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new(
        "!has(self.status) || !has(self.status.version) || int(self.spec.version) >= int(self.status.version)"
    )
    .message(Message::Expression(
        "'cannot go below the running version ' + self.status.version + ': PostgreSQL cannot open a data directory of a newer major version; restore a dump into a new database instead'".into()
    ))
    .field_path(".spec.version")
    .reason(Reason::FieldValueForbidden)
)]
#[operator(
    owns(Secret, StatefulSet, Service, CronJob, PersistentVolumeClaim),
    reconcile_on(labels),
    requeue = "5m"
)]
#[serde(rename_all = "camelCase")]
pub struct PostgreSQLSpec {
    /// Major version of the official `postgres` image.
    pub version: PostgresVersion,
    /// Size of each replica's data volume, in whole gibibytes; it can grow, never shrink.
    #[schemars(regex(pattern = r"^[0-9]+Gi$"))]
    #[x_kube(validation = Rule::new("quantity(self).compareTo(quantity(oldSelf)) >= 0")
        .message(Message::Expression("'cannot shrink from ' + oldSelf + ' to ' + self + ': volumes only grow'".into()))
        .reason(Reason::FieldValueForbidden))]
    pub storage: String,
    /// Number of servers: the first is the primary, the others stream from it.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: i32,
    /// Scheduled logical backups.
    #[serde(default)]
    pub backup: BackupSpec,
}

fn one() -> i32 {
    1
}

/// The supported major versions of PostgreSQL.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum PostgresVersion {
    /// PostgreSQL 12.
    #[serde(rename = "12")]
    V12,
    /// PostgreSQL 13.
    #[serde(rename = "13")]
    V13,
    /// PostgreSQL 14.
    #[serde(rename = "14")]
    V14,
    /// PostgreSQL 15.
    #[serde(rename = "15")]
    V15,
    /// PostgreSQL 16.
    #[serde(rename = "16")]
    V16,
    /// PostgreSQL 17.
    #[serde(rename = "17")]
    V17,
    /// PostgreSQL 18.
    #[serde(rename = "18")]
    V18,
}

impl PostgresVersion {
    /// The major version as written in the spec and in the image tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V12 => "12",
            Self::V13 => "13",
            Self::V14 => "14",
            Self::V15 => "15",
            Self::V16 => "16",
            Self::V17 => "17",
            Self::V18 => "18",
        }
    }
}

/// When and how long to keep logical backups (`pg_dump`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Whether to take backups.
    #[serde(default)]
    pub enabled: bool,
    /// Cron schedule of the backups (five fields, or a macro like `@daily`).
    #[serde(default = "nightly")]
    #[schemars(regex(
        pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*/,A-Za-z?-]+( [0-9*/,A-Za-z?-]+){4})$"
    ))]
    pub schedule: String,
    /// How long a backup is kept, in days (`30d`).
    #[serde(default = "month")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*d$"))]
    pub retention: String,
}

impl Default for BackupSpec {
    fn default() -> Self {
        Self { enabled: false, schedule: nightly(), retention: month() }
    }
}

fn nightly() -> String {
    "0 2 * * *".to_owned()
}

fn month() -> String {
    "30d".to_owned()
}

/// What the operator observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgreSQLStatus {
    /// Pending, Creating, Running or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Servers that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// The major version the servers run; a downgrade below it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Secret holding `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// `host:port` of the primary, for clients in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded and BackupScheduled.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
