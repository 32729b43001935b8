//! The PostgreSQL operator with the real kubectl: the `test-db` walkthrough, credentials that
//! survive every reconcile, backups only once the database is ready, rolling changes, refusal of
//! invalid specs and deletion of everything it created.

use opkit_examples::postgresql::*;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use opkit_envtest::TestEnv;
use types::PostgreSQL;

use super::support::{Demo, Served, condition, env, slow_env};

const TEST_DB: &str = "apiVersion: database.example.com/v1
kind: PostgreSQL
metadata:
  name: test-db
spec:
  version: \"14\"
  storage: \"1Gi\"
  replicas: 1
";

const WITH_BACKUPS: &str = "apiVersion: database.example.com/v1
kind: PostgreSQL
metadata:
  name: test-db
spec:
  version: \"14\"
  storage: \"1Gi\"
  replicas: 1
  backup:
    enabled: true
    schedule: \"0 3 * * *\"
    retention: \"7d\"
";

async fn start(env: TestEnv) -> Demo {
    env.install_crd::<PostgreSQL>().await.expect("CRD installs");
    Demo::start(env, &app::app(), |m| m.operator::<PostgreSQL>()).await
}

async fn demo() -> Demo {
    start(env().await).await
}

async fn ready(demo: &Demo) {
    demo.wait_until("postgresql/test-db", "condition=Ready")
        .await;
}

async fn password(demo: &Demo) -> Vec<u8> {
    let secrets: Api<Secret> = Api::namespaced(demo.client(), "default");
    let secret = secrets
        .get("test-db-credentials")
        .await
        .expect("the credentials Secret exists");
    secret
        .data
        .and_then(|d| d.get("password").cloned())
        .expect("a password")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_db_walkthrough_becomes_ready() {
    let mut demo = demo().await;
    demo.apply(TEST_DB).await;
    ready(&demo).await;

    let sts = demo
        .ok(&["get", "statefulset", "test-db", "-o", "json"])
        .await;
    let sts: serde_json::Value = serde_json::from_str(&sts).expect("StatefulSet JSON");
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], "postgres:14");
    assert_eq!(sts["spec"]["serviceName"], "test-db-headless");
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "data");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Delete"
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
        "Retain"
    );
    let env = pod["containers"][0]["env"].to_string();
    assert!(
        env.contains("test-db-credentials"),
        "the password comes from the Secret: {env}"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);

    assert_eq!(
        demo.jsonpath("service/test-db-headless", "{.spec.clusterIP}")
            .await,
        "None"
    );
    let selector = demo.jsonpath("service/test-db", "{.spec.selector}").await;
    assert!(
        selector.contains("test-db-0"),
        "clients reach the primary only: {selector}"
    );

    let username = demo
        .jsonpath("secret/test-db-credentials", "{.data.username}")
        .await;
    assert_eq!(username, "cG9zdGdyZXM=", "username is postgres");
    let secret = password(&demo).await;
    assert_eq!(secret.len(), 32);
    assert!(secret.iter().all(u8::is_ascii_alphanumeric));

    assert!(
        !demo.exists("cronjob/test-db-backup").await,
        "backups are off by default"
    );
    let table = demo.ok(&["get", "pg"]).await;
    assert!(
        table.contains("test-db   14        1          Running"),
        "{table}"
    );
    let status = demo
        .jsonpath("postgresql/test-db", "{.status.endpoint} {.status.version}")
        .await;
    assert_eq!(status, "test-db.default.svc:5432 14");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_servers_run_in_a_restricted_namespace() {
    let mut demo = demo().await;
    demo.restricted_namespace("locked").await;
    let out = demo
        .run(&["apply", "-n", "locked", "-f", "-"], Some(TEST_DB))
        .await;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "a Pod Security warning"
    );
    let pods = demo.ready_with_pods("locked", "postgresql/test-db").await;
    assert_eq!(pods, ["pod/test-db-0"]);
    // Pod Security admitted the StatefulSet's pod: it exists, and runs as the image's user.
    assert_eq!(
        demo.jsonpath_in(
            "locked",
            "pod/test-db-0",
            "{.spec.securityContext.runAsNonRoot}"
        )
        .await,
        "true"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_generated_once_and_never_logged() {
    let mut demo = demo().await;
    demo.apply(TEST_DB).await;
    ready(&demo).await;
    let first = password(&demo).await;

    demo.patch("postgresql/test-db", r#"{"spec":{"replicas":2}}"#)
        .await;
    demo.wait_jsonpath("statefulset/test-db", "{.spec.replicas}", "2")
        .await;
    demo.ok(&["label", "postgresql/test-db", "team=payments"])
        .await;
    demo.wait_jsonpath(
        "secret/test-db-credentials",
        "{.metadata.labels.team}",
        "payments",
    )
    .await;
    // Drift on the Secret is put back and announced in an Event, which must not carry the password.
    demo.ok(&[
        "label",
        "secret/test-db-credentials",
        "team=other",
        "--overwrite",
    ])
    .await;
    demo.wait_jsonpath(
        "secret/test-db-credentials",
        "{.metadata.labels.team}",
        "payments",
    )
    .await;
    demo.stop().await;
    let restarted = Demo::start(demo.env, &app::app(), |m| m.operator::<PostgreSQL>()).await;
    // The restarted operator's reconcile of test-db is complete: it had its chance to regenerate.
    restarted.reconciled("postgresql", 1).await;
    ready(&restarted).await;
    assert_eq!(password(&restarted).await, first, "the password changed");

    let text = String::from_utf8(first.clone()).expect("alphanumeric");
    let events = restarted.ok(&["get", "events", "-o", "yaml"]).await;
    assert!(events.contains("test-db-credentials"), "{events}");
    assert!(!events.contains(&text), "an event carries the password");
    let mut restarted = restarted;
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_secret_is_not_silently_replaced() {
    let mut demo = demo().await;
    demo.apply(TEST_DB).await;
    ready(&demo).await;
    let secrets: Api<Secret> = Api::namespaced(demo.client(), "default");
    let owner = secrets
        .get("test-db-credentials")
        .await
        .expect("Secret")
        .metadata
        .owner_references;
    assert!(owner.is_some_and(|o| o.iter().any(|r| r.kind == "PostgreSQL")));
    demo.ok(&["delete", "secret", "test-db-credentials"]).await;
    demo.ok(&[
        "wait",
        "--for=condition=Degraded",
        "postgresql/test-db",
        "--timeout=30s",
    ])
    .await;
    let message = demo
        .jsonpath("postgresql/test-db", &condition("Degraded", "message"))
        .await;
    assert!(message.contains("restore it"), "{message}");
    assert!(
        !demo.exists("secret/test-db-credentials").await,
        "a new password was generated for an initialized database"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_scheduled_only_once_the_database_is_ready() {
    let mut demo = start(slow_env().await).await;
    demo.apply(WITH_BACKUPS).await;
    // The simulation settles the held StatefulSet as unready; the operator sees that change.
    demo.hold_unready("test-db").await;
    // The reconcile that saw the unready StatefulSet wrote this reason after deciding on backups.
    demo.wait_jsonpath(
        "postgresql/test-db",
        &condition("BackupScheduled", "reason"),
        "WaitingForDatabase",
    )
    .await;
    assert!(
        !demo.exists("cronjob/test-db-backup").await,
        "a backup CronJob exists before the database is ready"
    );

    demo.release("test-db").await;
    ready(&demo).await;
    demo.wait_jsonpath("cronjob/test-db-backup", "{.spec.schedule}", "0 3 * * *")
        .await;
    let policy = demo
        .jsonpath("cronjob/test-db-backup", "{.spec.concurrencyPolicy}")
        .await;
    assert_eq!(policy, "Forbid");
    let env = demo
        .jsonpath(
            "cronjob/test-db-backup",
            "{.spec.jobTemplate.spec.template.spec.containers[0].env}",
        )
        .await;
    assert!(
        env.contains("RETENTION_DAYS") && env.contains("\"7\""),
        "{env}"
    );
    demo.ok(&["get", "pvc", "test-db-backup"]).await;

    demo.patch(
        "postgresql/test-db",
        r#"{"spec":{"backup":{"enabled":false}}}"#,
    )
    .await;
    demo.wait_gone("cronjob/test-db-backup").await;
    demo.ok(&["get", "pvc", "test-db-backup"]).await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_and_upgrades_roll_the_statefulset_and_the_crd_refuses_downgrades() {
    let mut demo = demo().await;
    demo.apply(TEST_DB).await;
    ready(&demo).await;
    demo.patch("postgresql/test-db", r#"{"spec":{"replicas":3}}"#)
        .await;
    demo.wait_jsonpath("postgresql/test-db", "{.status.readyReplicas}", "3")
        .await;

    demo.patch("postgresql/test-db", r#"{"spec":{"version":"15"}}"#)
        .await;
    demo.wait_jsonpath(
        "statefulset/test-db",
        "{.spec.template.spec.containers[0].image}",
        "postgres:15",
    )
    .await;
    demo.wait_jsonpath("postgresql/test-db", "{.status.version}", "15")
        .await;

    // The CRD's rule refuses the downgrade before it is stored.
    let refused = demo
        .patch_refused("postgresql/test-db", r#"{"spec":{"version":"14"}}"#)
        .await;
    assert_eq!(
        refused.trim(),
        "The PostgreSQL \"test-db\" is invalid: spec.version: Forbidden: cannot go below the running version 15: PostgreSQL cannot open a data directory of a newer major version; restore a dump into a new database instead"
    );
    assert_eq!(
        demo.jsonpath("postgresql/test-db", "{.spec.version}").await,
        "15"
    );
    let image = demo
        .jsonpath(
            "statefulset/test-db",
            "{.spec.template.spec.containers[0].image}",
        )
        .await;
    assert_eq!(image, "postgres:15", "a downgrade reached the StatefulSet");
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_storage_expands_the_claims_and_the_crd_refuses_shrinking() {
    let mut demo = demo().await;
    demo.apply(TEST_DB).await;
    ready(&demo).await;
    // The embedded server has no StatefulSet controller to create the claim; make it as it would.
    demo.apply(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data-test-db-0
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
",
    )
    .await;
    demo.patch("postgresql/test-db", r#"{"spec":{"storage":"5Gi"}}"#)
        .await;
    demo.wait_jsonpath(
        "pvc/data-test-db-0",
        "{.spec.resources.requests.storage}",
        "5Gi",
    )
    .await;
    let template = demo
        .jsonpath(
            "statefulset/test-db",
            "{.spec.volumeClaimTemplates[0].spec.resources.requests.storage}",
        )
        .await;
    assert_eq!(template, "1Gi", "volumeClaimTemplates are immutable");

    // Shrinking is refused by the CRD's transition rule; other changes still go through.
    let refused = demo
        .patch_refused("postgresql/test-db", r#"{"spec":{"storage":"2Gi"}}"#)
        .await;
    assert_eq!(
        refused.trim(),
        "The PostgreSQL \"test-db\" is invalid: spec.storage: Forbidden: cannot shrink from 5Gi to 2Gi: volumes only grow"
    );
    demo.patch("postgresql/test-db", r#"{"spec":{"replicas":2}}"#)
        .await;
    demo.wait_jsonpath(
        "postgresql/test-db",
        "{.spec.storage} {.spec.replicas}",
        "5Gi 2",
    )
    .await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_removes_everything_it_created() {
    let mut demo = demo().await;
    demo.apply(WITH_BACKUPS).await;
    ready(&demo).await;
    demo.wait_exists("cronjob/test-db-backup").await;
    demo.ok(&["delete", "postgresql", "test-db"]).await;
    for what in [
        "statefulset/test-db",
        "service/test-db",
        "service/test-db-headless",
        "secret/test-db-credentials",
        "cronjob/test-db-backup",
        "pvc/test-db-backup",
    ] {
        demo.wait_gone(what).await;
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(demo.client(), "default");
    assert!(
        statefulsets
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_refused() {
    let mut demo = demo().await;
    let cases = [
        ("version: \"11\"\n  storage: 1Gi", "spec.version"),
        ("version: \"14\"\n  storage: 1G", "spec.storage"),
        (
            "version: \"14\"\n  storage: 1Gi\n  replicas: 0",
            "spec.replicas",
        ),
        (
            "version: \"14\"\n  storage: 1Gi\n  replicas: 6",
            "spec.replicas",
        ),
        (
            "version: \"14\"\n  storage: 1Gi\n  backup:\n    retention: 30 days",
            "spec.backup.retention",
        ),
        (
            "version: \"14\"\n  storage: 1Gi\n  backup:\n    schedule: every night",
            "spec.backup.schedule",
        ),
        ("storage: 1Gi", "spec.version"),
    ];
    for (spec, field) in cases {
        let manifest = format!(
            "apiVersion: database.example.com/v1\nkind: PostgreSQL\nmetadata:\n  name: bad\nspec:\n  {spec}\n"
        );
        demo.refused_naming(&manifest, field).await;
    }

    // The schema checks the shape of the schedule; the operator checks that cron accepts it.
    let manifest = WITH_BACKUPS.replace("0 3 * * *", "61 * * * *");
    demo.apply(&manifest).await;
    demo.wait_degraded("postgresql/test-db", "InvalidSpec")
        .await;
    assert!(
        !demo.exists("statefulset/test-db").await,
        "an invalid spec was acted upon"
    );
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_run_example_postgresql_serves_the_sample_until_stopped() {
    let served = Served::start(app::app());
    served.wait_exists("postgresql/test-db").await;
    let kubectl = &served.kubectl;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresql/test-db",
            "--timeout=30s",
        ])
        .await;
    let image = kubectl
        .jsonpath(
            "statefulset/test-db",
            "{.spec.template.spec.containers[0].image}",
        )
        .await;
    assert_eq!(image, "postgres:14");
    served.stop().await;
}

#[test]
fn the_manifests_carry_the_validation_and_least_privilege() {
    crate::support::manifests(
        &app::app(),
        &[
            "pattern: ^[0-9]+Gi$",
            "maximum: 5.0",
            "minimum: 1.0",
            "- '12'\n",
            "- '18'\n",
            "- pg\n",
        ],
        &[
            "- secrets",
            "- statefulsets",
            "- services",
            "- cronjobs",
            "- persistentvolumeclaims",
        ],
    );
}
