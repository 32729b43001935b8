//! The example operators of opkit, as a library: each module is one operator, its resource
//! types, its reconcile and its command line, run by `cargo run --example <name>` and used by
//! the workspace's tests and benchmarks.
//!
//! | module | what it shows |
//! |---|---|
//! | [`webapp`] | dependents (Deployment, Service), status from a rollout, finalizer, admission webhooks |
//! | [`postgresql`] | a StatefulSet with generated credentials, volume expansion, immutable fields, backups |
//! | [`appconfig`] | a rendered ConfigMap, a watched kind and an index, rolling the Deployments that use it |
//! | [`backup`] | a CronJob from a validated schedule, Secrets by reference, Job outcomes in status |
//! | [`platform`] | two operators in one process, dependents in dependency order, optional CRDs |
//! | [`tenants`] | a controller on a built-in, cluster-scoped kind (Namespace) with typed data |

pub mod appconfig;
pub mod backup;
pub mod platform;
pub mod postgresql;
pub mod tenants;
pub mod webapp;

/// Every Rust snippet of the README and of `docs/` is a doc test of this library, so the
/// documentation compiles, and runs where it can, with the code:
/// `cargo test --doc -p opkit-examples`.
#[cfg(doctest)]
mod docs {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/README.md")]
    struct Index;
    // Its listings are whole files of a scaffolded project: cargo-opkit's tests compile and run them.
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/deploying.md")]
    struct Deploying;
    #[doc = include_str!("../docs/envtest.md")]
    struct Envtest;
    #[doc = include_str!("../docs/performance.md")]
    struct Performance;
    #[doc = include_str!("../docs/reliability.md")]
    struct Reliability;
    #[doc = include_str!("../docs/guide/resource.md")]
    struct GuideResource;
    #[doc = include_str!("../docs/guide/versions.md")]
    struct GuideVersions;
    #[doc = include_str!("../docs/guide/validation.md")]
    struct GuideValidation;
    #[doc = include_str!("../docs/guide/webhooks.md")]
    struct GuideWebhooks;
    #[doc = include_str!("../docs/guide/reconcile.md")]
    struct GuideReconcile;
    #[doc = include_str!("../docs/guide/dependents.md")]
    struct GuideDependents;
    #[doc = include_str!("../docs/guide/status.md")]
    struct GuideStatus;
    #[doc = include_str!("../docs/guide/finalizers.md")]
    struct GuideFinalizers;
    #[doc = include_str!("../docs/guide/errors-and-backoff.md")]
    struct GuideErrors;
    #[doc = include_str!("../docs/guide/controllers.md")]
    struct GuideControllers;
    #[doc = include_str!("../docs/guide/watches-and-indexes.md")]
    struct GuideWatches;
    #[doc = include_str!("../docs/guide/events-and-metrics.md")]
    struct GuideEventsAndMetrics;
    #[doc = include_str!("../docs/guide/testing.md")]
    struct GuideTesting;
    #[doc = include_str!("../docs/guide/cli-and-manifests.md")]
    struct GuideCli;
    #[doc = include_str!("../docs/guide/production.md")]
    struct GuideProduction;
    #[doc = include_str!("../docs/guide/scaling.md")]
    struct GuideScaling;
    #[doc = include_str!("../docs/examples/webapp.md")]
    struct ExampleWebApp;
    #[doc = include_str!("../docs/examples/postgresql.md")]
    struct ExamplePostgresql;
    #[doc = include_str!("../docs/examples/appconfig.md")]
    struct ExampleAppConfig;
    #[doc = include_str!("../docs/examples/backup.md")]
    struct ExampleBackup;
    #[doc = include_str!("../docs/examples/platform.md")]
    struct ExamplePlatform;
    #[doc = include_str!("../docs/examples/tenants.md")]
    struct ExampleTenants;
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn markdown_under(dir: &Path, found: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {dir:?}: {e}"));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                markdown_under(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }

    /// A page added to `docs/` without its line in the `docs` module would go uncompiled.
    #[test]
    fn every_page_of_the_docs_is_a_doc_test() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut pages = Vec::new();
        markdown_under(&root.join("docs"), &mut pages);
        assert!(pages.len() > 10, "found only {pages:?}");
        let lib = include_str!("lib.rs");
        let missing: Vec<String> = pages
            .iter()
            .filter_map(|page| page.strip_prefix(root).ok())
            .map(|page| page.to_string_lossy().replace('\\', "/"))
            .filter(|page| !lib.contains(&format!("include_str!(\"../{page}\")")))
            .collect();
        assert!(
            missing.is_empty(),
            "add these pages to the docs module of examples/lib.rs: {missing:?}"
        );
    }
}
