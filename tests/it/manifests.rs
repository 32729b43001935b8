//! The generated deploy manifests under `config/` and `charts/` match what the operators print.
//!
//! A CRD or ClusterRole that drifts from the binary is the classic operator outage, so every
//! file is produced here from the examples' own `app()`, by the generator `cargo opkit
//! manifests` runs for every opkit project (`cargo_opkit::manifests`), and compared byte for
//! byte. This repository keeps the scaffolded files (the manager's Deployment, the chart's
//! templates, ...) exactly as the templates render them, so they are checked too.
//! `cargo manifests` (the ignored `regenerate` test) rewrites them.

use std::path::{Path, PathBuf};

use cargo_opkit::manifests::{self, File, Layout, Operator, Printed, Sample, Scaffolded};

/// The namespace `config/webapp` and the chart's examples deploy the WebApp operator to.
pub const WEBAPP_NAMESPACE: &str = "webapp-operator-system";
/// The namespace `config/platform` deploys the EcommercePlatform operator to.
pub const PLATFORM_NAMESPACE: &str = "ecommerceplatform-operator-system";

/// The command the generated files name.
const COMMAND: &str = "cargo manifests";

/// What `app` prints: `crd`, `rbac`, and `webhooks` and `policies` for kustomize and for the chart.
fn printed(app: &opkit::App, namespace: &str) -> Printed {
    Printed {
        crd: app.crd_yaml_for(namespace, true).expect("CRDs render"),
        chart_crd: app.crd_yaml().expect("CRDs render"),
        rbac: app.rbac_yaml(namespace).expect("RBAC renders"),
        webhooks: app
            .webhooks_yaml(namespace, true)
            .expect("webhook configurations render"),
        chart_webhooks: app
            .webhooks_yaml("default", false)
            .expect("webhook configurations render"),
        policies: app.policies_yaml(namespace).expect("policies render"),
        chart_policies: app.policies_yaml("default").expect("policies render"),
    }
}

/// An example's operator: `name` is the example (its binary's name in the headers), `app_name`
/// the name its `App` has, `sample` its sample.yaml.
fn operator(
    name: &str,
    app_name: &str,
    app: &opkit::App,
    namespace: &str,
    sample: (&str, &str),
) -> Operator {
    let (file, yaml) = sample;
    Operator {
        name: app_name.to_owned(),
        program: name.to_owned(),
        namespace: namespace.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        printed: printed(app, namespace),
        samples: vec![Sample {
            file: file.to_owned(),
            yaml: yaml.to_owned(),
            copied_from: Some(format!("examples/{name}/sample.yaml")),
        }],
    }
}

/// Every generated file, from the operators' `crd`, `rbac` and `webhooks` output and samples.
fn generated() -> Vec<File> {
    let webapp = operator(
        "webapp",
        "webapp-operator",
        &opkit_examples::webapp::app(),
        WEBAPP_NAMESPACE,
        (
            "example.com_v1_webapp.yaml",
            include_str!("../../examples/webapp/sample.yaml"),
        ),
    );
    let platform = operator(
        "platform",
        "ecommerceplatform-operator",
        &opkit_examples::platform::app(),
        PLATFORM_NAMESPACE,
        (
            "platform.example.com_v1_ecommerceplatform.yaml",
            include_str!("../../examples/platform/sample.yaml"),
        ),
    );
    let layout = |config: &str, chart: Option<&str>| Layout {
        command: COMMAND.to_owned(),
        config: Some(config.into()),
        chart: chart.map(PathBuf::from),
    };
    let mut files = manifests::render(
        &webapp,
        &layout("config/webapp", Some("charts/webapp-operator")),
    )
    .expect("the WebApp manifests render");
    files.extend(
        manifests::render(&platform, &layout("config/platform", None))
            .expect("the platform manifests render"),
    );
    files
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_manifests_match_the_operators() {
    if let Err(drift) = manifests::check(&repository(), &generated(), Scaffolded::Own, COMMAND) {
        panic!("{drift}");
    }
}

#[test]
fn generated_paths_are_distinct_and_rbac_is_complete() {
    let files = generated();
    let mut paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), files.len(), "two generated files share a path");
    for dir in ["config/webapp/rbac", "config/platform/rbac"] {
        for file in [
            "service_account.yaml",
            "role.yaml",
            "role_binding.yaml",
            "leader_election_role.yaml",
            "leader_election_role_binding.yaml",
            "metrics_reader_role.yaml",
        ] {
            let path = Path::new(dir).join(file);
            assert!(paths.contains(&path), "{} is not generated", path.display());
        }
    }
}

/// Rewrites every generated file; `cargo manifests` runs it.
#[test]
#[ignore = "writes the generated manifests; run with `cargo manifests`"]
fn regenerate() {
    let written = manifests::write(&repository(), &generated(), Scaffolded::Own)
        .expect("the manifests are written");
    for path in written {
        println!("wrote {}", path.display());
    }
}
