//! The Backup operator: validates the spec and the Secrets it names, keeps the CronJob, and
//! reports the outcome of the CronJob's Jobs.

use croner::parser::{CronParser, Seconds, Year};
use k8s_openapi::api::batch::v1::JobTemplateSpec;
use kube::api::ListParams;
use opkit::k8s::*;
use opkit::prelude::*;

use super::job::{BACKUP_LABEL, destination_keys, pod_template, retention_seconds};
use super::types::{Backup, DestinationKind};

/// The longest Backup name whose CronJob name (`<name>-cronjob`) the API server accepts (52).
const MAX_NAME: usize = 52 - "-cronjob".len();

impl Reconcile for Backup {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
        // An invalid spec leaves an existing CronJob as it was: the last valid schedule keeps
        // running while the error is reported.
        let retention = validate(self, ctx).await?;
        let cronjob = ctx.ensure(BackupCronJob { backup: self, retention }).await?;
        let namespace = self.namespace().unwrap_or_default();
        let jobs: Api<Job> = ctx.api(Some(&namespace));
        let selector = format!("{BACKUP_LABEL}={}", self.name_any());
        let mut jobs = jobs
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                opkit::Error::kube(
                    format!("listing the Jobs of Backup {namespace}/{}", self.name_any()),
                    e,
                )
            })?
            .items;
        jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let latest = jobs.last().map(|j| (j.name_any(), outcome(j)));
        let schedule = cronjob.get().and_then(|c| c.status.as_ref());
        let last_schedule =
            schedule.and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0.to_string());
        let succeeded = jobs.iter().filter(|j| outcome(j) == "Succeeded");
        let from_jobs = succeeded
            .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
            .max();
        let last_success =
            schedule.and_then(|s| s.last_successful_time.as_ref()).map(|t| t.0).max(from_jobs);

        let previous = self.status.clone().unwrap_or_default();
        let status = ctx.status();
        match &latest {
            Some((job, "Failed")) => {
                if previous.last_job.as_ref() != Some(job)
                    || previous.last_job_result.as_deref() != Some("Failed")
                {
                    let note = format!("backup Job {namespace}/{job} failed; see its pod logs");
                    ctx.event(EventType::Warning, "BackupFailed", &note).await;
                }
                status.condition(
                    "LastBackupSucceeded",
                    false,
                    "JobFailed",
                    format!("Job {job} failed"),
                );
            }
            Some((job, "Succeeded")) => {
                status.condition(
                    "LastBackupSucceeded",
                    true,
                    "JobSucceeded",
                    format!("Job {job} succeeded"),
                );
            }
            _ => {}
        }
        let message = format!(
            "CronJob {}-cronjob runs on {:?}, keeping dumps for {}",
            self.name_any(),
            self.spec.schedule,
            self.spec.retention
        );
        status
            .update(|s| {
                s.cron_job = Some(format!("{}-cronjob", self.name_any()));
                s.last_schedule_time = last_schedule;
                s.last_successful_time = last_success.map(|t| t.to_string());
                s.last_job = latest.as_ref().map(|(name, _)| name.clone());
                s.last_job_result = latest.as_ref().map(|(_, outcome)| (*outcome).to_owned());
            })?
            .ready(true, "Scheduled", message);
        Ok(Action::done())
    }
}

/// Running, Succeeded or Failed, from a Job's conditions.
fn outcome(job: &Job) -> &'static str {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten();
    let finished = conditions.filter(|c| c.status == "True").find_map(|c| match c.type_.as_str() {
        "Complete" => Some("Succeeded"),
        "Failed" => Some("Failed"),
        _ => None,
    });
    finished.unwrap_or("Running")
}

/// Checks what the CRD's schema cannot: the schedule parses as cron, and the Secrets exist with
/// the keys the Job reads (their values are never read). Returns the retention in seconds.
async fn validate(backup: &Backup, ctx: &Context<Backup>) -> opkit::Result<u64> {
    let spec = &backup.spec;
    if backup.name_any().len() > MAX_NAME {
        return Err(opkit::Error::invalid_spec(format!(
            "the name is longer than {MAX_NAME} characters, too long for the CronJob name"
        )));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        // The CronJob controller knows @midnight; the parser knows the same schedule as @daily.
        .parse(&spec.schedule.replace("@midnight", "@daily"))
        .map_err(|e| {
            opkit::Error::invalid_spec(format!(
                "schedule {:?} is not a valid cron expression: {e}",
                spec.schedule
            ))
        })?;
    let retention = retention_seconds(&spec.retention).ok_or_else(|| {
        opkit::Error::invalid_spec(format!(
            "retention {:?} is not a number of hours, days or weeks like 7d",
            spec.retention
        ))
    })?;
    let credentials = &spec.source.connection.secret_ref;
    let source_keys = [credentials.username_key.as_str(), credentials.password_key.as_str()];
    require_keys(backup, ctx, &credentials.name, &source_keys).await?;
    match (&spec.destination.secret_ref, spec.destination.kind) {
        (Some(secret), kind) => {
            require_keys(backup, ctx, &secret.name, destination_keys(kind)).await?
        }
        (None, DestinationKind::Azure) => {
            return Err(opkit::Error::invalid_spec(
                "destination.secretRef is required for azure (AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY)",
            ));
        }
        (None, _) => {}
    }
    Ok(retention)
}

/// Fails unless the Secret `name` exists in the Backup's namespace with every key of `keys`.
async fn require_keys(
    backup: &Backup,
    ctx: &Context<Backup>,
    name: &str,
    keys: &[&str],
) -> opkit::Result<()> {
    let namespace = backup.namespace().unwrap_or_default();
    let secret = match ctx.cached::<Secret>(Some(&namespace), name) {
        Some(secret) => Some((*secret).clone()),
        // A Secret applied just before its Backup may not have reached the cache yet.
        None => ctx
            .api::<Secret>(Some(&namespace))
            .get_opt(name)
            .await
            .map_err(|e| opkit::Error::kube(format!("reading Secret {namespace}/{name}"), e))?,
    };
    let Some(secret) = secret else {
        return Err(opkit::Error::invalid_spec(format!(
            "Secret {namespace}/{name} does not exist"
        )));
    };
    let has = |key: &str| {
        secret.data.as_ref().is_some_and(|d| d.contains_key(key))
            || secret.string_data.as_ref().is_some_and(|d| d.contains_key(key))
    };
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !has(k)).collect();
    if !missing.is_empty() {
        return Err(opkit::Error::invalid_spec(format!(
            "Secret {namespace}/{name} has no key {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Index keys: `<namespace>/<secret>` of every Secret a Backup reads.
pub fn secret_keys(backup: &Backup) -> Vec<String> {
    let namespace = backup.namespace().unwrap_or_default();
    let source = Some(&backup.spec.source.connection.secret_ref.name);
    let destination = backup.spec.destination.secret_ref.as_ref().map(|s| &s.name);
    source.into_iter().chain(destination).map(|name| format!("{namespace}/{name}")).collect()
}

/// The Backups to reconcile when a Secret changes: those naming it (through the index).
pub fn backups_using_secret(
    secret: &Secret,
    backups: &opkit::Primaries<Backup>,
) -> Vec<opkit::ObjectRef<Backup>> {
    let key = format!("{}/{}", secret.namespace().unwrap_or_default(), secret.name_any());
    backups.index_refs("secret", &key)
}

struct BackupCronJob<'a> {
    backup: &'a Backup,
    retention: u64,
}

impl Ensure for BackupCronJob<'_> {
    type Object = CronJob;

    fn desired(&self) -> CronJob {
        let backup = self.backup;
        let template = pod_template(backup, self.retention);
        CronJob {
            metadata: ObjectMeta {
                name: Some(format!("{}-cronjob", backup.name_any())),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: backup.spec.schedule.clone(),
                // Two dumps of one database at once only load it twice and race on retention.
                concurrency_policy: Some("Forbid".to_owned()),
                // A run missed by more than an hour (operator or cluster down) is skipped, not
                // started late during business hours.
                starting_deadline_seconds: Some(3600),
                successful_jobs_history_limit: Some(3),
                // Failed Jobs are kept longer: their pods' logs say why.
                failed_jobs_history_limit: Some(3),
                job_template: JobTemplateSpec {
                    metadata: template.metadata.clone(),
                    spec: Some(JobSpec { backoff_limit: Some(2), template, ..Default::default() }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
