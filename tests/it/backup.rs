//! The Backup operator with the real kubectl: the CronJob per source and destination,
//! credentials by reference only, refusal of bad schedules and retention, and the status of runs
//! as the embedded server's CronJob simulation produces them.

use opkit_examples::backup::*;

use std::time::Duration;

use opkit_envtest::TestEnv;
use opkit_envtest::sim::{ManualClock, Simulation};
use types::Backup;

use super::support::{Kubectl, Served, operator_client};

const SECRETS: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
stringData:
  username: backup
  password: s3cr3t-db-password
---
apiVersion: v1
kind: Secret
metadata:
  name: bucket-credentials
stringData:
  AWS_ACCESS_KEY_ID: AKIAEXAMPLE
  AWS_SECRET_ACCESS_KEY: s3cr3t-bucket-key
  AZURE_STORAGE_ACCOUNT: example
  AZURE_STORAGE_KEY: s3cr3t-azure-key
  service-account.json: \"{}\"
";

fn backup(name: &str, source: &str, destination: &str, schedule: &str, retention: &str) -> String {
    format!(
        "apiVersion: backup.example.com/v1
kind: Backup
metadata:
  name: {name}
spec:
  source:
    type: {source}
    connection:
      host: {source}.default.svc
      database: orders
      secretRef:
        name: db-credentials
  destination:
    type: {destination}
    bucket: example-backups
    secretRef:
      name: bucket-credentials
  schedule: \"{schedule}\"
  retention: \"{retention}\"
"
    )
}

struct Demo {
    _env: TestEnv,
    kubectl: Kubectl,
    running: Option<opkit::Running>,
}

impl Demo {
    async fn start(clock: Option<ManualClock>) -> Demo {
        let mut simulation = Simulation::default().delay(Duration::from_millis(50));
        if let Some(clock) = clock {
            simulation = simulation.clock(clock);
        }
        let env = TestEnv::builder()
            .simulation(simulation)
            .build()
            .await
            .expect("embedded API server starts");
        env.install_crd::<Backup>().await.expect("CRD installs");
        let kubectl = Kubectl::new(&env);
        let running = Some(
            opkit::Manager::new(operator_client(&env, &app::app()).await)
                .operator::<Backup>()
                .start(),
        );
        Demo {
            _env: env,
            kubectl,
            running,
        }
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    async fn ready(&self, name: &str) {
        let target = format!("backup/{name}");
        self.kubectl
            .ok(&["wait", "--for=condition=Ready", &target, "--timeout=30s"])
            .await;
    }

    async fn cronjob(&self, name: &str) -> serde_json::Value {
        let out = self
            .kubectl
            .ok(&["get", "cronjob", &format!("{name}-cronjob"), "-o", "json"])
            .await;
        serde_json::from_str(&out).expect("CronJob JSON")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_source_and_destination_gets_its_tools() {
    let mut demo = Demo::start(None).await;
    demo.kubectl.apply(SECRETS).await;
    let cases = [
        (
            "pg",
            "postgresql",
            "s3",
            "postgres:",
            "pg_dump",
            "amazon/aws-cli",
            "aws s3 cp",
            "5432",
        ),
        (
            "my",
            "mysql",
            "gcs",
            "mysql:",
            "mysqldump",
            "google-cloud-cli",
            "gsutil -q cp",
            "3306",
        ),
        (
            "mongo",
            "mongodb",
            "azure",
            "mongo:",
            "mongodump",
            "azure-cli",
            "az storage blob upload",
            "27017",
        ),
    ];
    for (name, source, destination, ..) in cases {
        demo.kubectl
            .apply(&backup(name, source, destination, "0 2 * * *", "7d"))
            .await;
    }
    for (name, _, _, dump_image, dump, upload_image, upload, port) in cases {
        demo.ready(name).await;
        let cronjob = demo.cronjob(name).await;
        let spec = &cronjob["spec"];
        assert_eq!(spec["schedule"], "0 2 * * *");
        assert_eq!(spec["concurrencyPolicy"], "Forbid");
        assert_eq!(cronjob["metadata"]["ownerReferences"][0]["name"], name);
        let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
        let init = &pod["initContainers"][0];
        let main = &pod["containers"][0];
        assert!(
            init["image"]
                .as_str()
                .is_some_and(|i| i.starts_with(dump_image)),
            "{init}"
        );
        assert!(
            init["command"][2]
                .as_str()
                .is_some_and(|c| c.contains(dump)),
            "{init}"
        );
        assert!(
            main["image"]
                .as_str()
                .is_some_and(|i| i.contains(upload_image)),
            "{main}"
        );
        let script = main["command"][2].as_str().unwrap_or_default();
        assert!(script.contains(upload), "{script}");
        let env = main["env"].as_array().cloned().unwrap_or_default();
        let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
        assert_eq!(
            var("RETENTION_SECONDS").map(|e| e["value"].clone()),
            Some("604800".into())
        );
        assert_eq!(
            var("PREFIX").map(|e| e["value"].clone()),
            Some(format!("default/{name}").into())
        );
        let init_env = init["env"].as_array().cloned().unwrap_or_default();
        assert!(
            init_env
                .iter()
                .any(|e| e["name"] == "DB_PORT" && e["value"] == port),
            "{init}"
        );
        // Credentials are references; no value of a Secret appears anywhere in the CronJob.
        let text = cronjob.to_string();
        assert!(
            !text.contains("s3cr3t"),
            "a credential was copied into the CronJob"
        );
        let secret_vars = init_env
            .iter()
            .chain(&env)
            .filter(|e| e.get("valueFrom").is_some())
            .count();
        assert!(secret_vars >= 2, "{pod}");
    }
    // mysqldump and mongodump get the password from a file; quotes and backslashes survive.
    let dir = tempfile::tempdir().expect("temp dir");
    let password = r#"a"b\c'd$e"#;
    for (name, file, expected) in [
        ("my", "my.cnf", "[client]\npassword=\"a\\\"b\\\\c'd$e\"\n"),
        ("mongo", "mongodump.yaml", "password: 'a\"b\\c''d$e'\n"),
    ] {
        let cronjob = demo.cronjob(name).await;
        let script = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]
            [0]["command"][2]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let write = script
            .lines()
            .next()
            .unwrap_or_default()
            .replace("/tmp/", "./");
        let out = std::process::Command::new("sh")
            .args(["-ec", &write])
            .current_dir(dir.path())
            .env("DB_PASSWORD", password)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read_to_string(dir.path().join(file)).expect("option file");
        assert_eq!(written, expected);
    }

    // The gcs key is mounted as a file, not passed in the environment.
    let my = demo.cronjob("my").await;
    let volumes = my["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(volumes.contains("service-account.json"), "{volumes}");

    let table = demo.kubectl.ok(&["get", "backups"]).await;
    assert!(
        table.contains("SCHEDULE") && table.contains("postgresql"),
        "{table}"
    );

    // Deleting a Backup takes its CronJob with it.
    demo.kubectl.ok(&["delete", "backup", "pg"]).await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=delete",
            "cronjob/pg-cronjob",
            "--timeout=30s",
        ])
        .await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_backups_are_refused_or_reported_without_a_cronjob() {
    let mut demo = Demo::start(None).await;
    demo.kubectl.apply(SECRETS).await;
    let valid = backup("nightly", "postgresql", "s3", "0 2 * * *", "7d");
    let refused = [
        ("0 2 * * *", "every night at two", "spec.schedule"),
        ("0 2 * * *", "0 2 * *", "spec.schedule"),
        (
            "retention: \"7d\"",
            "retention: \"7 days\"",
            "spec.retention",
        ),
        ("retention: \"7d\"", "retention: \"0d\"", "spec.retention"),
        ("type: postgresql", "type: oracle", "spec.source.type"),
        ("type: s3", "type: dropbox", "spec.destination.type"),
        (
            "      database: orders\n",
            "      database: orders\n      password: hunter2\n",
            "password",
        ),
        (
            "      secretRef:\n        name: db-credentials\n",
            "",
            "secretRef",
        ),
    ];
    for (from, to, field) in refused {
        let manifest = valid.replacen(from, to, 1);
        assert_ne!(manifest, valid);
        let stderr = demo.kubectl.refused(&manifest).await;
        assert!(
            stderr.contains(field),
            "the error does not name {field}: {stderr}"
        );
    }

    // The pattern admits five fields; the operator's parser refuses minute 61.
    demo.kubectl
        .apply(&backup("nightly", "postgresql", "s3", "61 2 * * *", "7d"))
        .await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=condition=Degraded",
            "backup/nightly",
            "--timeout=30s",
        ])
        .await;
    let reason = demo
        .kubectl
        .jsonpath(
            "backup/nightly",
            "{.status.conditions[?(@.type==\"Ready\")].reason}",
        )
        .await;
    assert_eq!(reason, "InvalidSpec");
    let events = demo
        .kubectl
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "type=Warning",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert!(events.contains("schedule"), "{events}");
    let out = demo
        .kubectl
        .run(&["get", "cronjob", "nightly-cronjob"], None)
        .await;
    assert!(
        !out.status.success(),
        "a CronJob was created for an invalid schedule"
    );

    // A missing Secret is reported; creating it is enough to converge (the operator watches Secrets).
    let missing = backup("other", "mysql", "s3", "@midnight", "4w")
        .replace("db-credentials", "mysql-credentials");
    demo.kubectl.apply(&missing).await;
    demo.kubectl
        .wait_for(
            &[
                "get",
                "backup",
                "other",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
            ],
            "invalid spec: Secret default/mysql-credentials does not exist",
        )
        .await;
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mysql-credentials\nstringData:\n  username: u\n";
    demo.kubectl.apply(secret).await;
    demo.kubectl
        .wait_for(
            &[
                "get",
                "backup",
                "other",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
            ],
            "invalid spec: Secret default/mysql-credentials has no key password",
        )
        .await;
    demo.kubectl
        .apply(&format!("{secret}  password: p\n"))
        .await;
    demo.ready("other").await;
    demo.kubectl.ok(&["get", "cronjob", "other-cronjob"]).await;

    // Fixing the schedule converges too.
    demo.kubectl.apply(&valid).await;
    demo.ready("nightly").await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_backup_jobs_run_in_a_restricted_namespace() {
    let clock = ManualClock::new(jiff::Timestamp::now());
    let mut demo = Demo::start(Some(clock.clone())).await;
    let kubectl = &demo.kubectl;
    kubectl.restricted_namespace("locked").await;
    let in_locked = ["apply", "-n", "locked", "-f", "-"];
    kubectl.ok_with(&in_locked, Some(SECRETS)).await;
    let hourly = backup("hourly", "postgresql", "s3", "0 * * * *", "12h");
    kubectl.ok_with(&in_locked, Some(&hourly)).await;
    assert!(
        kubectl
            .ready_with_pods("locked", "backup/hourly")
            .await
            .is_empty()
    );
    clock.advance(Duration::from_secs(3600));
    kubectl
        .wait_jsonpath_in(
            "locked",
            "backup/hourly",
            "{.status.lastJobResult}",
            "Succeeded",
        )
        .await;
    // Pod Security admitted the Job's pod: a refused one would never exist.
    let job = kubectl
        .jsonpath_in("locked", "backup/hourly", "{.status.lastJob}")
        .await;
    let pods = kubectl
        .ok(&[
            "get",
            "pods",
            "-n",
            "locked",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].name}",
        ])
        .await;
    assert_eq!(pods, job);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_the_runs_of_the_cronjob() {
    let clock = ManualClock::new(jiff::Timestamp::now());
    let mut demo = Demo::start(Some(clock.clone())).await;
    demo.kubectl.apply(SECRETS).await;
    demo.kubectl
        .apply(&backup("hourly", "postgresql", "s3", "0 * * * *", "12h"))
        .await;
    demo.ready("hourly").await;
    assert_eq!(
        demo.kubectl
            .jsonpath("backup/hourly", "{.status.lastJob}")
            .await,
        ""
    );

    clock.advance(Duration::from_secs(3600));
    demo.kubectl
        .wait_for(
            &[
                "get",
                "backup",
                "hourly",
                "-o",
                "jsonpath={.status.lastJobResult}",
            ],
            "Succeeded",
        )
        .await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=condition=LastBackupSucceeded",
            "backup/hourly",
            "--timeout=30s",
        ])
        .await;
    let status = demo
        .kubectl
        .jsonpath(
            "backup/hourly",
            "{.status.lastScheduleTime} {.status.lastSuccessfulTime} {.status.lastJob}",
        )
        .await;
    let parts: Vec<&str> = status.split(' ').collect();
    assert_eq!(parts.len(), 3, "{status}");
    assert!(parts.iter().all(|p| !p.is_empty()), "{status}");
    let job = parts[2];
    let label = demo
        .kubectl
        .jsonpath(
            &format!("job/{job}"),
            "{.metadata.labels.backup\\.example\\.com/name}",
        )
        .await;
    assert_eq!(label, "hourly");

    // The next run fails (the simulation fails Jobs carrying this annotation).
    demo.kubectl
        .ok(&[
            "patch",
            "cronjob",
            "hourly-cronjob",
            "--type=merge",
            "-p={\"spec\":{\"jobTemplate\":{\"metadata\":{\"annotations\":{\"envtest.opkit.dev/fail\":\"true\"}}}}}",
        ])
        .await;
    clock.advance(Duration::from_secs(3600));
    demo.kubectl
        .wait_for(
            &[
                "get",
                "backup",
                "hourly",
                "-o",
                "jsonpath={.status.lastJobResult}",
            ],
            "Failed",
        )
        .await;
    demo.kubectl
        .ok(&[
            "wait",
            "--for=condition=LastBackupSucceeded=false",
            "backup/hourly",
            "--timeout=30s",
        ])
        .await;
    let failed = demo
        .kubectl
        .jsonpath("backup/hourly", "{.status.lastJob}")
        .await;
    assert_ne!(failed, job);
    let successful = demo
        .kubectl
        .jsonpath("backup/hourly", "{.status.lastSuccessfulTime}")
        .await;
    assert_eq!(
        successful, parts[1],
        "a failed run moved the last successful time"
    );
    let events = demo
        .kubectl
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "reason=BackupFailed",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert!(events.contains(&failed), "{events}");
    demo.stop().await;
}

/// Runs `script` with `sh -ec` after `prelude`, in `dir`, with the upload step's variables.
fn shell(dir: &std::path::Path, prelude: &str, script: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-ec")
        .arg(format!("{prelude}\n{script}"))
        .current_dir(dir)
        .env("EXT", "pgdump")
        .env("PREFIX", "default/orders")
        .env("RETENTION", "7d")
        .env("RETENTION_SECONDS", "604800")
        .output()
        .expect("sh runs")
}

#[test]
fn retention_deletes_only_old_dumps_the_job_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = jiff::Timestamp::now();
    let name = |age_days: i64| {
        let at = now - jiff::SignedDuration::from_hours(24 * age_days);
        format!("{}.pgdump", at.strftime("%Y%m%dT%H%M%SZ"))
    };
    let (old, recent) = (name(8), name(6));
    // The provider's CLI is replaced by functions recording what the script asks of it.
    let prelude = format!(
        "upload() {{ echo \"upload $1 $2\" >> calls; }}
list() {{ printf '%s\\n' {old} {recent} notes.txt 20000101T000000Z; }}
remove() {{ echo \"remove $1\" >> calls; }}"
    );
    let out = shell(dir.path(), &prelude, job::UPLOAD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(dir.path().join("calls")).expect("calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].starts_with("upload /backup/dump ") && calls[0].ends_with(".pgdump"));
    assert_eq!(calls[1], format!("remove {old}"));

    // A failed upload deletes nothing.
    let failing = prelude.replace("echo \"upload $1 $2\" >> calls;", "return 1;");
    std::fs::remove_file(dir.path().join("calls")).expect("reset");
    let out = shell(dir.path(), &failing, job::UPLOAD);
    assert!(!out.status.success());
    assert!(
        !dir.path().join("calls").exists(),
        "something was deleted after a failed upload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_run_example_backup_serves_the_sample_until_stopped() {
    let served = Served::start(app::app());
    served.wait_exists("backup/orders-db").await;
    let kubectl = &served.kubectl;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "backup/orders-db",
            "--timeout=30s",
        ])
        .await;
    let schedule = kubectl
        .jsonpath("cronjob/orders-db-cronjob", "{.spec.schedule}")
        .await;
    assert_eq!(schedule, "0 2 * * *");
    served.stop().await;
}

#[test]
fn the_manifests_carry_the_validation_and_least_privilege() {
    let (_, rbac) = crate::support::manifests(
        &app::app(),
        &[
            "pattern: ^[1-9][0-9]{0,3}[hdw]$",
            "- postgresql\n",
            "- azure\n",
        ],
        &[],
    );
    // Secrets are read, never written.
    let secrets = rbac
        .split("- apiGroups:")
        .find(|rule| rule.contains("- secrets"))
        .unwrap_or_default();
    assert!(
        secrets.contains("- watch")
            && !secrets.contains("- create")
            && !secrets.contains("- patch"),
        "{secrets}"
    );
}
