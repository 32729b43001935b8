//! `cargo opkit new`, `create api` and `create webhook`: a project and what it grows by, rendered
//! from the templates and written only once every check passed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::changes::{self, Changes};
use crate::error::Error;
use crate::names;
use crate::owned::{self, Pods};
use crate::project::{Api, Project, RECORD, Webhook};
use crate::template::Templates;

/// Where `src/lib.rs` and `tests/it/main.rs` take new modules.
const MODULES: &str = "// cargo-opkit: modules";
/// Where `src/lib.rs`'s `app()` takes new controllers and webhooks.
const APP: &str = "// cargo-opkit: app";
const LIB: &str = "src/lib.rs";
const TESTS: &str = "tests/it/main.rs";

/// Where a new project's opkit comes from.
///
/// ```
/// let local = cargo_opkit::Dependency::Path("/src/opkit".into());
/// assert_ne!(local, cargo_opkit::Dependency::Registry);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// The package registry, at this cargo-opkit's version.
    Registry,
    /// A checkout of the opkit workspace (its root directory), as path dependencies.
    Path(PathBuf),
}

impl Dependency {
    /// The `Cargo.toml` source of the workspace crate `krate`: `version = ".."` or `path = ".."`.
    fn source(&self, krate: &str) -> String {
        match self {
            Dependency::Registry => {
                let version = env!("CARGO_PKG_VERSION");
                let minor = version.rsplit_once('.').map_or(version, |(v, _)| v);
                format!("version = \"{minor}\"")
            }
            Dependency::Path(root) => {
                let path = root.join(krate).to_string_lossy().into_owned();
                format!("path = {}", toml::Value::String(path))
            }
        }
    }
}

/// What `cargo opkit new` creates.
///
/// ```
/// let options = cargo_opkit::NewProject {
///     name: "memcached-operator".into(),
///     group: "cache".into(),
///     domain: Some("example.com".into()),
///     opkit: cargo_opkit::Dependency::Registry,
/// };
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct NewProject {
    /// The package and operator name.
    pub name: String,
    /// The API group, or its first part with `domain`.
    pub group: String,
    /// The domain the group ends with.
    pub domain: Option<String>,
    /// Where opkit comes from.
    pub opkit: Dependency,
}

/// What `cargo opkit create api` adds.
///
/// ```
/// let api = cargo_opkit::NewApi {
///     version: "v1".into(),
///     kind: "Memcached".into(),
///     namespaced: true,
///     owns: vec!["Deployment".into()],
/// };
/// # let _ = api;
/// ```
#[derive(Clone, Debug)]
pub struct NewApi {
    /// The version, `v1`.
    pub version: String,
    /// The kind, UpperCamelCase.
    pub kind: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// The kinds its controller owns (see `--help` for those it takes).
    pub owns: Vec<String>,
}

/// What `cargo opkit create webhook` adds.
///
/// ```
/// let webhook = cargo_opkit::NewWebhook { kind: "Memcached".into(), validating: true, mutating: false };
/// # let _ = webhook;
/// ```
#[derive(Clone, Debug)]
pub struct NewWebhook {
    /// The kind the webhooks admit.
    pub kind: String,
    /// Add a validating webhook.
    pub validating: bool,
    /// Add a mutating webhook.
    pub mutating: bool,
}

#[derive(Serialize)]
struct ProjectContext<'a> {
    name: &'a str,
    #[serde(rename = "crate")]
    krate: String,
    group: &'a str,
    opkit: String,
    opkit_envtest: String,
}

/// Creates the project `options.name` in `parent`: its manifest, `src/`, tests, README, CI
/// workflow, Dockerfile and record. Returns the files written, relative to the project.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let options = cargo_opkit::NewProject {
///     name: "memcached-operator".into(),
///     group: "cache".into(),
///     domain: Some("example.com".into()),
///     opkit: cargo_opkit::Dependency::Registry,
/// };
/// let written = cargo_opkit::new(dir.path(), &options)?;
/// assert!(written.contains(&"src/lib.rs".into()));
/// let project = cargo_opkit::Project::find(&dir.path().join("memcached-operator"))?.1;
/// assert_eq!(project.group, "cache.example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn new(parent: &Path, options: &NewProject) -> Result<Vec<PathBuf>, Error> {
    names::project(&options.name)?;
    let group = names::group(&options.group, options.domain.as_deref())?;
    let root = parent.join(&options.name);
    if root.exists() {
        let mut entries = std::fs::read_dir(&root).map_err(Error::io(&root))?;
        if entries.next().is_some() {
            return Err(Error::DirectoryNotEmpty { path: root });
        }
    }
    let templates = Templates::new()?;
    let context = ProjectContext {
        name: &options.name,
        krate: names::crate_name(&options.name),
        group: &group,
        opkit: options.opkit.source("opkit"),
        opkit_envtest: options.opkit.source("opkit-envtest"),
    };
    let mut changes = Changes::new(&root);
    for (template, path) in [
        ("project/Cargo.toml", "Cargo.toml"),
        ("project/main.rs", "src/main.rs"),
        ("project/lib.rs", LIB),
        ("project/tests.rs", TESTS),
        ("project/README.md", "README.md"),
        ("project/gitignore", ".gitignore"),
        ("project/dockerignore", ".dockerignore"),
        ("project/Dockerfile", "Dockerfile"),
        ("project/ci.yml", ".github/workflows/ci.yml"),
    ] {
        changes.create(path, templates.render(template, &context)?)?;
    }
    changes.create(RECORD, Project::new(&options.name, group).to_record()?)?;
    let written = changes.apply()?;
    changes::format_rust(&root, &written);
    Ok(written)
}

/// A dependent of the kind being added, for the templates.
#[derive(Serialize)]
struct Dependent {
    kind: &'static str,
    /// Its variable: `deployment`, `stateful_set`.
    var: String,
}

#[derive(Serialize)]
struct ApiContext<'a> {
    name: &'a str,
    #[serde(rename = "crate")]
    krate: String,
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    /// The kind in lower case: `memcached` (CRD singular, sample name).
    lower: String,
    /// The kind in snake case, for function names.
    snake: String,
    /// The kind's variable and module in code (`r#type` for `Type`).
    var: String,
    module: String,
    sample_file: String,
    namespaced: bool,
    owns: Vec<Dependent>,
    owned_kinds: Vec<&'static str>,
    /// "a Deployment and a Service".
    owns_phrase: String,
    fields: Vec<&'static str>,
    labels: bool,
    selects: bool,
    pods: bool,
    workloads: bool,
    jobs: bool,
    validating: bool,
    mutating: bool,
}

impl<'a> ApiContext<'a> {
    fn new(project: &'a Project, api: &'a Api) -> Result<ApiContext<'a>, Error> {
        let owned = api
            .owns
            .iter()
            .map(|o| owned::find(o))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fields: Vec<&'static str> = Vec::new();
        if !api.namespaced && !owned.is_empty() {
            fields.push("namespace");
        }
        for field in owned.iter().flat_map(|o| o.fields) {
            if !fields.contains(field) {
                fields.push(field);
            }
        }
        if owned.is_empty() {
            fields.push("message");
        }
        let has = |pods: Pods| owned.iter().any(|o| o.pods == pods);
        let (stem, module) = names::module(&api.kind);
        let lower = api.kind.to_lowercase();
        Ok(ApiContext {
            name: &project.name,
            krate: names::crate_name(&project.name),
            group: &project.group,
            version: &api.version,
            kind: &api.kind,
            sample_file: format!("{}_{}_{lower}.yaml", project.group, api.version),
            lower,
            var: module.clone(),
            snake: stem,
            module,
            namespaced: api.namespaced,
            owns: owned
                .iter()
                .map(|o| Dependent {
                    kind: o.kind,
                    var: names::module(o.kind).1,
                })
                .collect(),
            owned_kinds: owned.iter().map(|o| o.kind).collect(),
            owns_phrase: phrase(owned.iter().map(|o| o.kind)),
            labels: !owned.is_empty(),
            selects: has(Pods::Workload)
                || has(Pods::Job)
                || api.owns.iter().any(|o| o == "Service"),
            pods: has(Pods::Workload) || has(Pods::Job),
            workloads: has(Pods::Workload),
            jobs: has(Pods::Job),
            validating: api.webhooks.contains(&Webhook::Validating),
            mutating: api.webhooks.contains(&Webhook::Mutating),
            fields,
        })
    }
}

/// "a Deployment", "a Deployment and a Service", "a Deployment, a Service and a ConfigMap".
fn phrase<'a>(kinds: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = kinds.map(|k| format!("a {k}")).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Adds the kind `api` to the project at `dir` (or a parent): its type, reconcile with one
/// dependent per owned kind, sample and envtest test, registered in `src/lib.rs`. Returns the
/// files written, relative to the project.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let options = cargo_opkit::NewProject { name: "memcached-operator".into(), group: "cache".into(),
/// #     domain: Some("example.com".into()), opkit: cargo_opkit::Dependency::Registry };
/// # cargo_opkit::new(dir.path(), &options)?;
/// let project = dir.path().join("memcached-operator");
/// let api = cargo_opkit::NewApi {
///     version: "v1".into(),
///     kind: "Memcached".into(),
///     namespaced: true,
///     owns: vec!["Deployment".into()],
/// };
/// let written = cargo_opkit::create_api(&project, &api)?;
/// assert!(written.contains(&"src/memcached/reconcile.rs".into()));
/// let refused = cargo_opkit::create_api(&project, &api);
/// assert!(refused.is_err_and(|e| e.to_string().contains("has a Memcached kind already")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_api(dir: &Path, new: &NewApi) -> Result<Vec<PathBuf>, Error> {
    let (root, mut project) = Project::find(dir)?;
    names::version(&new.version)?;
    names::kind(&new.kind)?;
    let (stem, module) = names::module(&new.kind);
    if let Some(existing) = project
        .apis
        .iter()
        .find(|a| a.kind.eq_ignore_ascii_case(&new.kind) || names::module(&a.kind).0 == stem)
    {
        return Err(Error::KindExists {
            kind: new.kind.clone(),
            existing: format!("{} {}/{}", existing.kind, project.group, existing.version),
        });
    }
    let mut api = Api::new(&new.kind, &new.version, new.namespaced);
    for name in &new.owns {
        let kind = owned::find(name)?.kind.to_owned();
        if kind == new.kind {
            return Err(Error::OwnsItself { kind });
        }
        if !api.owns.contains(&kind) {
            api.owns.push(kind);
        }
    }
    let templates = Templates::new()?;
    let context = ApiContext::new(&project, &api)?;
    let mut changes = Changes::new(&root);
    let source = PathBuf::from("src").join(&stem);
    changes.create(
        source.join("mod.rs"),
        templates.render("api/mod.rs", &context)?,
    )?;
    changes.create(
        source.join("reconcile.rs"),
        templates.render("api/reconcile.rs", &context)?,
    )?;
    let sample = PathBuf::from("config/samples").join(&context.sample_file);
    changes.create(&sample, templates.render("api/sample.yaml", &context)?)?;
    changes.create(
        format!("tests/it/{stem}.rs"),
        templates.render("api/test.rs", &context)?,
    )?;
    let lib = Path::new(LIB);
    changes.edit(lib, |text| {
        let what = format!("the module of {}", new.kind);
        changes::insert_before(lib, text, MODULES, &format!("pub mod {module};"), &what)
    })?;
    changes.edit(lib, |text| {
        let line = format!(
            "let app = app\n    .operator::<{module}::{kind}>()\n    .sample(include_str!(\"../{}\"));",
            sample.to_string_lossy(),
            kind = new.kind,
        );
        changes::insert_before(lib, text, APP, &line, &format!("the {} controller", new.kind))
    })?;
    let tests = Path::new(TESTS);
    changes.edit(tests, |text| {
        let what = format!("the tests of {}", new.kind);
        changes::insert_before(tests, text, MODULES, &format!("mod {module};"), &what)
    })?;
    project.apis.push(api);
    changes.edit(RECORD, |_| project.to_record())?;
    let written = changes.apply()?;
    changes::format_rust(&root, &written);
    Ok(written)
}

/// Adds admission webhooks for the kind `webhook.kind` of the project at `dir` (or a parent):
/// a typed validator and/or mutator, each with an envtest test, registered in `src/lib.rs`.
/// Returns the files written, relative to the project.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let options = cargo_opkit::NewProject { name: "memcached-operator".into(), group: "cache".into(),
/// #     domain: Some("example.com".into()), opkit: cargo_opkit::Dependency::Registry };
/// # cargo_opkit::new(dir.path(), &options)?;
/// let project = dir.path().join("memcached-operator");
/// # let api = cargo_opkit::NewApi { version: "v1".into(), kind: "Memcached".into(), namespaced: true, owns: vec![] };
/// # cargo_opkit::create_api(&project, &api)?;
/// let webhook = cargo_opkit::NewWebhook { kind: "Memcached".into(), validating: true, mutating: false };
/// let written = cargo_opkit::create_webhook(&project, &webhook)?;
/// assert!(written.contains(&"src/memcached/validator.rs".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_webhook(dir: &Path, new: &NewWebhook) -> Result<Vec<PathBuf>, Error> {
    let (root, mut project) = Project::find(dir)?;
    let wanted: Vec<Webhook> = [
        (new.validating, Webhook::Validating),
        (new.mutating, Webhook::Mutating),
    ]
    .into_iter()
    .filter_map(|(on, webhook)| on.then_some(webhook))
    .collect();
    if wanted.is_empty() {
        return Err(Error::NoWebhook);
    }
    let api = project
        .api_mut(&new.kind)
        .ok_or_else(|| Error::UnknownKind {
            kind: new.kind.clone(),
        })?;
    if let Some(webhook) = wanted.iter().find(|w| api.webhooks.contains(w)) {
        return Err(Error::WebhookExists {
            kind: new.kind.clone(),
            webhook: webhook.as_str(),
        });
    }
    api.webhooks.extend(&wanted);
    let api = api.clone();
    let templates = Templates::new()?;
    let context = ApiContext::new(&project, &api)?;
    let (stem, module) = names::module(&new.kind);
    let mut changes = Changes::new(&root);
    let kind_module = PathBuf::from("src").join(&stem).join("mod.rs");
    let lib = Path::new(LIB);
    let tests = Path::new(TESTS);
    for webhook in &wanted {
        let (file, item, register) = match webhook {
            Webhook::Validating => ("validator", "Validator", "validator"),
            Webhook::Mutating => ("mutator", "Defaults", "mutator"),
        };
        changes.create(
            PathBuf::from("src").join(&stem).join(format!("{file}.rs")),
            templates.render(&format!("webhook/{file}.rs"), &context)?,
        )?;
        changes.create(
            format!("tests/it/{stem}_{file}.rs"),
            templates.render(&format!("webhook/{file}_test.rs"), &context)?,
        )?;
        let what = format!("the {} webhook of {}", webhook.as_str(), new.kind);
        changes.edit(&kind_module, |text| {
            changes::insert_before(
                &kind_module,
                text,
                MODULES,
                &format!("pub mod {file};"),
                &what,
            )
        })?;
        changes.edit(lib, |text| {
            let line = format!(
                "let app = app.{register}::<{module}::{kind}>({module}::{file}::{kind}{item});",
                kind = new.kind
            );
            changes::insert_before(lib, text, APP, &line, &what)
        })?;
        changes.edit(tests, |text| {
            changes::insert_before(tests, text, MODULES, &format!("mod {stem}_{file};"), &what)
        })?;
    }
    changes.edit(RECORD, |_| project.to_record())?;
    let written = changes.apply()?;
    changes::format_rust(&root, &written);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every file under `dir` and its content.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let read = |path: PathBuf| {
            let content = std::fs::read(&path).expect("reads the file");
            (path, content)
        };
        crate::testing::files(dir).into_iter().map(read).collect()
    }

    fn options(name: &str) -> NewProject {
        NewProject {
            name: name.into(),
            group: "cache".into(),
            domain: Some("example.com".into()),
            opkit: Dependency::Registry,
        }
    }

    fn api(kind: &str, owns: &[&str]) -> NewApi {
        NewApi {
            version: "v1".into(),
            kind: kind.into(),
            namespaced: true,
            owns: owns.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    /// A project with a Memcached kind owning a Deployment, in a temporary directory.
    fn project() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        new(dir.path(), &options("memcached-operator")).expect("the project is created");
        let root = dir.path().join("memcached-operator");
        create_api(&root, &api("Memcached", &["Deployment"])).expect("the kind is added");
        (dir, root)
    }

    /// Runs `command` on `dir`, which must refuse with a message containing `says`, and leave
    /// every file under `dir` as it was.
    fn refused<T: std::fmt::Debug>(
        dir: &Path,
        says: &str,
        command: impl FnOnce() -> Result<T, Error>,
    ) {
        let before = snapshot(dir);
        let message = command().expect_err("refused").to_string();
        assert!(message.contains(says), "{message:?} does not say {says:?}");
        assert!(
            snapshot(dir) == before,
            "the refusal changed files under {}",
            dir.display()
        );
    }

    #[test]
    fn new_refuses_invalid_names_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        refused(dir.path(), "invalid project name \"Memcached\"", || {
            new(dir.path(), &options("Memcached"))
        });
        let mut no_dot = options("memcached-operator");
        no_dot.domain = None;
        refused(
            dir.path(),
            "should be a domain with at least one dot",
            || new(dir.path(), &no_dot),
        );
        let mut bad_group = options("memcached-operator");
        bad_group.group = "Cache_Group".into();
        refused(dir.path(), "invalid group \"Cache_Group\"", || {
            new(dir.path(), &bad_group)
        });
        assert!(snapshot(dir.path()).is_empty());
    }

    #[test]
    fn new_refuses_a_directory_with_files() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let taken = dir.path().join("memcached-operator");
        std::fs::create_dir(&taken).expect("creates");
        std::fs::write(taken.join("notes.txt"), "mine").expect("writes");
        refused(dir.path(), "already exists and is not empty", || {
            new(dir.path(), &options("memcached-operator"))
        });
    }

    #[test]
    fn create_api_refuses_invalid_kinds_and_versions() {
        let (dir, root) = project();
        refused(dir.path(), "invalid kind \"memcached\"", || {
            create_api(&root, &api("memcached", &[]))
        });
        refused(dir.path(), "invalid kind \"Context\"", || {
            create_api(&root, &api("Context", &[]))
        });
        let mut bad_version = api("Backup", &[]);
        bad_version.version = "1".into();
        refused(dir.path(), "invalid version \"1\"", || {
            create_api(&root, &bad_version)
        });
    }

    #[test]
    fn create_api_refuses_a_kind_that_exists() {
        let (dir, root) = project();
        refused(
            dir.path(),
            "the project has a Memcached kind already (Memcached cache.example.com/v1)",
            || create_api(&root, &api("Memcached", &["Service"])),
        );
        // Kinds whose CRD or module would be the same.
        refused(
            dir.path(),
            "has a MemCached kind already (Memcached",
            || create_api(&root, &api("MemCached", &[])),
        );
        create_api(&root, &api("HttpRoute", &[])).expect("added");
        refused(
            dir.path(),
            "has a HTTPRoute kind already (HttpRoute",
            || create_api(&root, &api("HTTPRoute", &[])),
        );
    }

    #[test]
    fn create_api_refuses_unknown_and_self_owned_kinds() {
        let (dir, root) = project();
        refused(
            dir.path(),
            "unknown owned kind \"Ingress\": --owns takes Deployment,",
            || create_api(&root, &api("Site", &["Deployment", "Ingress"])),
        );
        refused(dir.path(), "the kind Service cannot own a Service", || {
            create_api(&root, &api("Service", &["Service"]))
        });
    }

    #[test]
    fn create_refuses_outside_a_project() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").expect("writes");
        refused(dir.path(), "is not an opkit project", || {
            create_api(dir.path(), &api("Memcached", &[]))
        });
        let webhook = NewWebhook {
            kind: "Memcached".into(),
            validating: true,
            mutating: false,
        };
        refused(dir.path(), "is not an opkit project", || {
            create_webhook(dir.path(), &webhook)
        });
    }

    #[test]
    fn create_api_refuses_a_file_it_would_overwrite() {
        let (dir, root) = project();
        std::fs::create_dir_all(root.join("src/backup")).expect("creates");
        std::fs::write(root.join("src/backup/reconcile.rs"), "// mine\n").expect("writes");
        refused(dir.path(), "src/backup/reconcile.rs exists already", || {
            create_api(&root, &api("Backup", &[]))
        });
    }

    #[test]
    fn create_api_refuses_a_lib_without_its_marker() {
        let (dir, root) = project();
        let lib = root.join(LIB);
        let text = std::fs::read_to_string(&lib).expect("reads");
        std::fs::write(&lib, text.replace(APP, "// gone")).expect("writes");
        refused(
            dir.path(),
            "src/lib.rs has no `// cargo-opkit: app` line, before which cargo opkit adds the Backup controller",
            || create_api(&root, &api("Backup", &[])),
        );
    }

    #[test]
    fn create_webhook_refuses_what_it_cannot_add() {
        let (dir, root) = project();
        let webhook = |kind: &str, validating, mutating| NewWebhook {
            kind: kind.into(),
            validating,
            mutating,
        };
        refused(dir.path(), "--validating, --mutating or both", || {
            create_webhook(&root, &webhook("Memcached", false, false))
        });
        refused(dir.path(), "the project has no Backup kind", || {
            create_webhook(&root, &webhook("Backup", true, false))
        });
        create_webhook(&root, &webhook("Memcached", true, false)).expect("added");
        refused(
            dir.path(),
            "Memcached has a validating webhook already",
            || create_webhook(&root, &webhook("Memcached", true, true)),
        );
    }

    #[test]
    fn the_readme_shows_the_dependencies_new_writes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        new(dir.path(), &options("memcached-operator")).expect("the project is created");
        let manifest = std::fs::read_to_string(dir.path().join("memcached-operator/Cargo.toml"))
            .expect("reads Cargo.toml");
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(readme).expect("reads the README");
        let dependencies = manifest
            .lines()
            .skip_while(|l| *l != "[dependencies]")
            .take_while(|l| !l.starts_with("[profile"))
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        for line in dependencies {
            assert!(
                readme.contains(&format!("\n{line}\n")),
                "the README lacks `{line}`"
            );
        }
    }

    #[test]
    fn a_second_api_leaves_the_first_untouched() {
        let (_dir, root) = project();
        let first = snapshot(&root.join("src/memcached"));
        let written = create_api(&root, &api("Backup", &["CronJob"])).expect("added");
        assert_eq!(
            written,
            [
                ".opkit",
                "config/samples/cache.example.com_v1_backup.yaml",
                "src/backup/mod.rs",
                "src/backup/reconcile.rs",
                "src/lib.rs",
                "tests/it/backup.rs",
                "tests/it/main.rs",
            ]
            .map(PathBuf::from)
        );
        assert!(snapshot(&root.join("src/memcached")) == first);
        let lib = std::fs::read_to_string(root.join(LIB)).expect("reads");
        assert!(
            lib.contains("pub mod backup;\npub mod memcached;\n"),
            "{lib}"
        );
        assert!(lib.contains(".operator::<memcached::Memcached>()"), "{lib}");
        assert!(lib.contains(".operator::<backup::Backup>()"), "{lib}");
        let project = Project::load(&root).expect("the record reads");
        let kinds: Vec<_> = project.apis.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["Memcached", "Backup"]);
    }

    #[test]
    fn owned_kinds_decide_the_spec_and_the_dependents() {
        let (_dir, root) = project();
        let mut cluster = api("Cache", &["statefulset", "Service", "Service"]);
        cluster.namespaced = false;
        create_api(&root, &cluster).expect("added");
        let types = std::fs::read_to_string(root.join("src/cache/mod.rs")).expect("reads");
        assert!(
            types.contains("#[operator(owns(StatefulSet, Service))]"),
            "{types}"
        );
        for field in [
            "pub namespace: String",
            "pub image: String",
            "pub replicas: i32",
            "pub port: i32",
        ] {
            assert!(types.contains(field), "{field} missing:\n{types}");
        }
        assert!(!types.contains("namespaced,"), "{types}");
        let reconcile =
            std::fs::read_to_string(root.join("src/cache/reconcile.rs")).expect("reads");
        assert!(
            reconcile.contains("impl Ensure for CacheStatefulSet<'_>"),
            "{reconcile}"
        );
        assert!(
            reconcile.contains("impl Ensure for CacheService<'_>"),
            "{reconcile}"
        );
        assert!(
            reconcile.contains("service_name: Some(cache.name_any())"),
            "{reconcile}"
        );
        let sample =
            std::fs::read_to_string(root.join("config/samples/cache.example.com_v1_cache.yaml"))
                .expect("reads");
        assert_eq!(
            sample,
            "apiVersion: cache.example.com/v1\nkind: Cache\nmetadata:\n  name: cache-sample\nspec:\n  \
             namespace: default\n  image: nginx:1.27\n  replicas: 2\n  port: 80\n"
        );
    }
}
