//! The generated deploy manifests under `config/` and `charts/` match what the operators print.
//!
//! A CRD or ClusterRole that drifts from the binary is the classic operator outage, so every
//! generated file is produced here from the examples' own `app()` and compared byte for byte.
//! `cargo manifests` (the ignored `regenerate` test) rewrites them.

use std::path::{Path, PathBuf};

/// The namespace `config/webapp` and the chart's examples deploy the WebApp operator to.
pub const WEBAPP_NAMESPACE: &str = "webapp-operator-system";
/// The namespace `config/platform` deploys the EcommercePlatform operator to.
pub const PLATFORM_NAMESPACE: &str = "ecommerceplatform-operator-system";

/// One generated file: its path from the repository root and its content.
struct Generated {
    path: PathBuf,
    content: String,
}

/// Every generated file, from the operators' `crd`, `rbac` and `webhooks` output and samples.
fn generated() -> Vec<Generated> {
    let webapp = opkit_examples::webapp::app();
    let platform = opkit_examples::platform::app();
    let mut files = Vec::new();
    config(
        &mut files,
        Operator {
            name: "webapp",
            app: &webapp,
            namespace: WEBAPP_NAMESPACE,
            sample: (
                "example.com_v1_webapp.yaml",
                include_str!("../../examples/webapp/sample.yaml"),
            ),
        },
    );
    config(
        &mut files,
        Operator {
            name: "platform",
            app: &platform,
            namespace: PLATFORM_NAMESPACE,
            sample: (
                "platform.example.com_v1_ecommerceplatform.yaml",
                include_str!("../../examples/platform/sample.yaml"),
            ),
        },
    );
    let chart = Path::new("charts/webapp-operator");
    files.extend(crds(
        &chart.join("crds"),
        "webapp crd",
        &webapp.crd_yaml().expect("CRDs render"),
    ));
    files.push(Generated {
        path: chart.join("files/rules.yaml"),
        content: header("webapp rbac") + &rules(&webapp, "ClusterRole"),
    });
    files.push(Generated {
        path: chart.join("files/leader-election-rules.yaml"),
        content: header("webapp rbac") + &rules(&webapp, "Role"),
    });
    files.push(Generated {
        path: chart.join("files/webhooks.yaml"),
        content: header("webapp webhooks")
            + &webapp
                .webhooks_yaml("default", false)
                .expect("webhook configurations render"),
    });
    files
}

struct Operator<'a> {
    name: &'static str,
    app: &'a opkit::App,
    namespace: &'static str,
    sample: (&'static str, &'static str),
}

fn config(files: &mut Vec<Generated>, op: Operator<'_>) {
    let root = Path::new("config").join(op.name);
    files.extend(crds(
        &root.join("crd/bases"),
        &format!(
            "{} crd --namespace {} --cert-manager",
            op.name, op.namespace
        ),
        &op.app
            .crd_yaml_for(op.namespace, true)
            .expect("CRDs render"),
    ));
    let source = format!("{} rbac --namespace {}", op.name, op.namespace);
    let rbac = op.app.rbac_yaml(op.namespace).expect("RBAC renders");
    for doc in documents(&rbac) {
        let file = match parse(&doc)["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => "service_account.yaml",
            "ClusterRole" => "role.yaml",
            "ClusterRoleBinding" => "role_binding.yaml",
            "Role" => "leader_election_role.yaml",
            "RoleBinding" => "leader_election_role_binding.yaml",
            other => panic!("`{source}` printed an unexpected {other}"),
        };
        files.push(Generated {
            path: root.join("rbac").join(file),
            content: header(&source) + &doc,
        });
    }
    let webhooks = op
        .app
        .webhooks_yaml(op.namespace, true)
        .expect("webhook configurations render");
    if !webhooks.is_empty() {
        let source = format!(
            "{} webhooks --namespace {} --cert-manager",
            op.name, op.namespace
        );
        files.push(Generated {
            path: root.join("webhook/manifests.yaml"),
            content: header(&source) + &webhooks,
        });
    }
    let (file, sample) = op.sample;
    files.push(Generated {
        path: root.join("samples").join(file),
        content: header(&format!("examples/{}/sample.yaml", op.name)) + sample,
    });
}

/// One file per CRD of `yaml`, named `<group>_<plural>.yaml` as kubebuilder names them.
fn crds(dir: &Path, source: &str, yaml: &str) -> Vec<Generated> {
    documents(yaml)
        .into_iter()
        .map(|doc| {
            let crd = parse(&doc);
            let group = crd["spec"]["group"].as_str().expect("CRD group");
            let plural = crd["spec"]["names"]["plural"].as_str().expect("CRD plural");
            Generated {
                path: dir.join(format!("{group}_{plural}.yaml")),
                content: header(source) + &doc,
            }
        })
        .collect()
}

/// The rules of the `kind` (ClusterRole or Role) the operator prints, for the chart's templates.
fn rules(app: &opkit::App, kind: &str) -> String {
    let rbac = app.rbac_yaml("default").expect("RBAC renders");
    let role = documents(&rbac)
        .iter()
        .map(|doc| parse(doc))
        .find(|obj| obj["kind"] == kind)
        .unwrap_or_else(|| panic!("the RBAC output has no {kind}"));
    serde_yaml_ng::to_string(&role["rules"]).expect("rules render")
}

fn header(source: &str) -> String {
    format!("# Generated by `cargo manifests` from `{source}`; do not edit.\n")
}

/// The documents of a YAML stream as `opkit::manifests::to_yaml` writes it.
fn documents(stream: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in stream.split_inclusive('\n') {
        match (line, docs.last_mut()) {
            ("---\n", _) | (_, None) => docs.push(String::new()),
            (_, Some(doc)) => doc.push_str(line),
        }
    }
    docs.retain(|doc| !doc.trim().is_empty());
    docs
}

fn parse(doc: &str) -> serde_json::Value {
    serde_yaml_ng::from_str(doc).expect("the operator prints valid YAML")
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_manifests_match_the_operators() {
    let mut drift = String::new();
    for file in generated() {
        let path = repository().join(&file.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != file.content {
            drift.push_str(&format!(
                "--- {0} (checked in)\n+++ {0} (generated)\n{1}\n",
                file.path.display(),
                diff(&current, &file.content)
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "generated manifests are out of date; run `cargo manifests` and commit the result:\n\n{drift}"
    );
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
    for file in generated() {
        let path = repository().join(&file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the directory");
        }
        std::fs::write(&path, &file.content).expect("write the manifest");
        println!("wrote {}", file.path.display());
    }
}

/// A line diff of `old` and `new` with three lines of context around each change.
fn diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        lines[k.saturating_sub(3)..(k + 4).min(lines.len())]
            .iter()
            .any(|(tag, _)| *tag != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (tag, line)) in lines.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("@@\n");
            }
            skipped = false;
            out.push_str(&format!("{tag}{line}\n"));
        } else {
            skipped = true;
        }
    }
    out
}

#[test]
fn diff_shows_changed_lines_with_context() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
    let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
    assert_eq!(diff(old, new), "@@\n b\n c\n d\n-e\n+E\n f\n g\n h\n");
}
