//! `cargo opkit manifests`: builds the project's operator binary, runs its `crd`, `rbac` and
//! `webhooks` subcommands, and writes or checks the manifests made from their output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::Error;
use crate::manifests::{self, Layout, Operator, Printed, Sample, Scaffolded};
use crate::project::Project;

/// The command that regenerates a project's manifests.
const COMMAND: &str = "cargo opkit manifests";

/// Writes the manifests of the project at `dir` (or a parent), or with `check` fails when one
/// is out of date. Returns the files written, relative to the project.
///
/// ```no_run
/// let written = cargo_opkit::update_manifests(std::path::Path::new("."), false)?;
/// for file in written {
///     println!("wrote {}", file.display());
/// }
/// # Ok::<(), cargo_opkit::Error>(())
/// ```
pub fn update_manifests(dir: &Path, check: bool) -> Result<Vec<PathBuf>, Error> {
    let (root, project) = Project::find(dir)?;
    let binary = build(&root, &project.name)?;
    let namespace = project.namespace();
    let printed = Printed {
        crd: run(
            &binary,
            &["crd", "--namespace", &namespace, "--cert-manager"],
        )?,
        chart_crd: run(&binary, &["crd"])?,
        rbac: run(&binary, &["rbac", "--namespace", &namespace])?,
        webhooks: run(
            &binary,
            &["webhooks", "--namespace", &namespace, "--cert-manager"],
        )?,
        chart_webhooks: run(&binary, &["webhooks"])?,
        policies: run(&binary, &["policies", "--namespace", &namespace])?,
        chart_policies: run(&binary, &["policies"])?,
    };
    let operator = Operator {
        version: version(&root, &project.name)?,
        name: project.name.clone(),
        program: project.name.clone(),
        namespace,
        printed,
        samples: samples(&root)?,
    };
    let layout = Layout {
        command: COMMAND.to_owned(),
        config: Some("config".into()),
        chart: Some(PathBuf::from("charts").join(&project.name)),
    };
    let files = manifests::render(&operator, &layout)?;
    if check {
        manifests::check(&root, &files, Scaffolded::Keep, COMMAND)?;
        Ok(Vec::new())
    } else {
        manifests::write(&root, &files, Scaffolded::Keep)
    }
}

/// The cargo running this command (`cargo opkit` sets `CARGO`), or the one on the path.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn failed(command: &str, out: &std::process::Output) -> Error {
    Error::Command {
        command: command.to_owned(),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
    }
}

/// Builds the binary `name` of the project at `root`; returns its path. Cargo's progress goes to
/// stderr as usual.
fn build(root: &Path, name: &str) -> Result<PathBuf, Error> {
    let shown = format!("cargo build --bin {name}");
    let out = cargo()
        .args([
            "build",
            "--bin",
            name,
            "--message-format",
            "json-render-diagnostics",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io("cargo"))?;
    if !out.status.success() {
        return Err(failed(&shown, &out));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| Error::Output {
            command: shown,
            problem: format!("no executable for the binary {name}"),
        })
}

/// The version of the package `name` at `root`.
fn version(root: &Path, name: &str) -> Result<String, Error> {
    let shown = "cargo metadata --no-deps";
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .map_err(Error::io("cargo"))?;
    if !out.status.success() {
        return Err(failed(shown, &out));
    }
    let metadata: Value = serde_json::from_slice(&out.stdout).map_err(|e| Error::Output {
        command: shown.to_owned(),
        problem: format!("JSON that does not parse: {e}"),
    })?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["version"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Output {
            command: shown.to_owned(),
            problem: format!("no package {name}"),
        })
}

/// Runs the operator binary with `args`; returns what it printed.
fn run(binary: &Path, args: &[&str]) -> Result<String, Error> {
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown = format!("{name} {}", args.join(" "));
    let out = Command::new(binary)
        .args(args)
        .output()
        .map_err(Error::io(binary))?;
    if !out.status.success() {
        return Err(failed(&shown, &out));
    }
    String::from_utf8(out.stdout).map_err(|_| Error::Output {
        command: shown,
        problem: "output that is not UTF-8".to_owned(),
    })
}

/// The project's samples: every YAML file of `config/samples` but its kustomization.
fn samples(root: &Path) -> Result<Vec<Sample>, Error> {
    let dir = root.join("config/samples");
    let mut samples = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(samples),
        Err(e) => {
            return Err(Error::Io {
                path: dir,
                source: e,
            });
        }
    };
    for entry in entries {
        let path = entry.map_err(Error::io(&dir))?.path();
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.ends_with(".yaml") && file != "kustomization.yaml" {
            let yaml = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
            samples.push(Sample {
                file,
                yaml,
                copied_from: None,
            });
        }
    }
    samples.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(samples)
}
