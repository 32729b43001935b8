//! What `cargo opkit` refuses or fails at. A refusal is decided before anything is written.

use std::path::PathBuf;

use crate::project::RECORD;

/// Why a `cargo opkit` command refused or failed.
///
/// ```
/// let error = cargo_opkit::Error::UnknownKind { kind: "Memcached".into() };
/// assert!(error.to_string().contains("create api --kind Memcached"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name the project, its API group, version or kind cannot take.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What was named: "kind", "group", ...
        what: &'static str,
        /// The name given.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// `new` into a directory that has files already.
    #[error(
        "{} already exists and is not empty; `cargo opkit new` creates a project in a new directory",
        .path.display()
    )]
    DirectoryNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A command that needs a project run outside one.
    #[error(
        "{} is not an opkit project: neither it nor a parent directory has a {RECORD} file \
         (`cargo opkit new` creates one)",
        .path.display()
    )]
    NotAProject {
        /// Where the search started.
        path: PathBuf,
    },
    /// `create api` for a kind the project has.
    #[error("the project has a {kind} kind already ({existing}); choose another kind")]
    KindExists {
        /// The kind.
        kind: String,
        /// What it clashes with: its group and version, or its module.
        existing: String,
    },
    /// `--owns` naming a kind the scaffold has no dependent for.
    #[error("unknown owned kind {kind:?}: --owns takes {known}")]
    UnknownOwnedKind {
        /// The kind given.
        kind: String,
        /// The kinds it takes, comma-separated.
        known: String,
    },
    /// A kind owning its own kind: the generated names would collide.
    #[error("the kind {kind} cannot own a {kind}: the generated code would confuse the two")]
    OwnsItself {
        /// The kind.
        kind: String,
    },
    /// `create webhook` for a kind the project does not have.
    #[error("the project has no {kind} kind; `cargo opkit create api --kind {kind}` adds it first")]
    UnknownKind {
        /// The kind.
        kind: String,
    },
    /// `create webhook` for a webhook the kind has already.
    #[error("{kind} has a {webhook} webhook already")]
    WebhookExists {
        /// The kind.
        kind: String,
        /// "validating" or "mutating".
        webhook: &'static str,
    },
    /// `create webhook` without `--validating` or `--mutating`.
    #[error("say which webhooks to add: --validating, --mutating or both")]
    NoWebhook,
    /// A file the scaffold would create exists.
    #[error("{} exists already; cargo opkit does not overwrite files", .path.display())]
    FileExists {
        /// The file, relative to the project.
        path: PathBuf,
    },
    /// A file the scaffold adds to lacks the line it adds before.
    #[error(
        "{} has no `{marker}` line, before which cargo opkit adds {what}; put the line back where \
         they belong",
        .path.display()
    )]
    MissingMarker {
        /// The file, relative to the project.
        path: PathBuf,
        /// The line looked for.
        marker: &'static str,
        /// What would have been added.
        what: String,
    },
    /// A project record that does not parse.
    #[error("{} is not a valid project record: {source}", .path.display())]
    Record {
        /// The record.
        path: PathBuf,
        /// Why it does not parse.
        source: toml::de::Error,
    },
    /// A project record that cannot be written.
    #[error("cannot write the project record: {0}")]
    RecordWrite(#[from] toml::ser::Error),
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A template failed to render (a bug in cargo-opkit's templates).
    #[error("template {name}: {source:#}")]
    Template {
        /// The template.
        name: String,
        /// The error.
        source: minijinja::Error,
    },
    /// A command `cargo opkit` runs failed.
    #[error("`{command}` failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(":\n{}", .stderr) })]
    Command {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// An operator's output that the manifests cannot be made from.
    #[error("`{command}` printed {problem}")]
    Output {
        /// The command that printed it.
        command: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `manifests --check` found generated files out of date.
    #[error(
        "generated manifests are out of date; run `{command}` and commit the result:\n\n{diff}"
    )]
    Drift {
        /// The command that regenerates them.
        command: String,
        /// Each stale file and how it differs.
        diff: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
