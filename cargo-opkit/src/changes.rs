//! What a scaffold changes in a project, planned in full before anything is written: every check
//! that could refuse runs first, so a refusal leaves the project as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The files a command creates or rewrites, relative to the project's root.
pub(crate) struct Changes {
    root: PathBuf,
    /// Path → its new content.
    files: BTreeMap<PathBuf, String>,
}

impl Changes {
    /// No changes yet to the project at `root`.
    pub(crate) fn new(root: &Path) -> Changes {
        Changes {
            root: root.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    /// Plans a new file; refuses if it exists.
    pub(crate) fn create(
        &mut self,
        path: impl Into<PathBuf>,
        content: String,
    ) -> Result<(), Error> {
        let path = path.into();
        if self.root.join(&path).exists() || self.files.contains_key(&path) {
            return Err(Error::FileExists { path });
        }
        self.files.insert(path, content);
        Ok(())
    }

    /// Plans `edit` of an existing file (or of one planned already).
    pub(crate) fn edit(
        &mut self,
        path: impl Into<PathBuf>,
        edit: impl FnOnce(&str) -> Result<String, Error>,
    ) -> Result<(), Error> {
        let path = path.into();
        let current = match self.files.get(&path) {
            Some(content) => content.clone(),
            None => {
                let full = self.root.join(&path);
                std::fs::read_to_string(&full).map_err(Error::io(full))?
            }
        };
        let edited = edit(&current)?;
        self.files.insert(path, edited);
        Ok(())
    }

    /// Writes every planned file; returns their paths, relative to the root.
    pub(crate) fn apply(self) -> Result<Vec<PathBuf>, Error> {
        let mut written = Vec::new();
        for (path, content) in self.files {
            let full = self.root.join(&path);
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
            }
            std::fs::write(&full, content).map_err(Error::io(&full))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// `source` with `line` added before the line that is `marker` (trimmed), at its indentation.
pub(crate) fn insert_before(
    path: &Path,
    source: &str,
    marker: &'static str,
    line: &str,
    what: &str,
) -> Result<String, Error> {
    let at = source
        .split_inclusive('\n')
        .scan(0, |offset, l| {
            let start = *offset;
            *offset += l.len();
            Some((start, l))
        })
        .find(|(_, l)| l.trim().starts_with(marker));
    let Some((start, marker_line)) = at else {
        return Err(Error::MissingMarker {
            path: path.to_path_buf(),
            marker,
            what: what.to_owned(),
        });
    };
    let indent = &marker_line[..marker_line.len() - marker_line.trim_start().len()];
    let mut out = String::with_capacity(source.len() + line.len() + indent.len() + 1);
    out.push_str(&source[..start]);
    for l in line.lines() {
        out.push_str(indent);
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&source[start..]);
    Ok(out)
}

/// Formats the Rust files among `paths` (relative to `root`) with rustfmt, as `cargo fmt` would;
/// says so on stderr and carries on when rustfmt is missing or fails (the files are written).
pub(crate) fn format_rust(root: &Path, paths: &[PathBuf]) {
    let files: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| root.join(p))
        .collect();
    if files.is_empty() {
        return;
    }
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    match std::process::Command::new(rustfmt)
        .args(["--edition", "2024"])
        .args(&files)
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "warning: rustfmt failed, so the new code is not formatted:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(error) => eprintln!("warning: cannot run rustfmt ({error}); run `cargo fmt` yourself"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKER: &str = "// cargo-opkit: app";

    #[test]
    fn lines_go_before_the_marker_at_its_indentation() {
        let source =
            "fn app() {\n    let app = 1;\n    // cargo-opkit: app (adds above)\n    app\n}\n";
        let out = insert_before(
            Path::new("src/lib.rs"),
            source,
            MARKER,
            "let app = app + 1;",
            "a controller",
        )
        .expect("the marker is there");
        assert_eq!(
            out,
            "fn app() {\n    let app = 1;\n    let app = app + 1;\n    // cargo-opkit: app (adds above)\n    app\n}\n"
        );
    }

    #[test]
    fn a_missing_marker_is_refused_with_the_file_and_the_line() {
        let refused = insert_before(
            Path::new("src/lib.rs"),
            "fn app() {}\n",
            MARKER,
            "x",
            "a controller",
        );
        let message = refused.expect_err("no marker").to_string();
        assert!(
            message.starts_with("src/lib.rs has no `// cargo-opkit: app` line, before which cargo opkit adds a controller"),
            "{message}"
        );
    }

    #[test]
    fn nothing_is_written_until_apply_and_existing_files_are_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("taken.rs"), "old").expect("writes");
        let mut changes = Changes::new(dir.path());
        changes.create("src/new.rs", "new".into()).expect("free");
        let refused = changes.create("taken.rs", "new".into());
        assert!(matches!(refused, Err(Error::FileExists { .. })));
        assert!(!dir.path().join("src").exists());
        changes
            .edit("taken.rs", |old| Ok(format!("{old}+")))
            .expect("edits");
        assert_eq!(changes.apply().expect("writes").len(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("taken.rs"))
                .ok()
                .as_deref(),
            Some("old+")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("src/new.rs"))
                .ok()
                .as_deref(),
            Some("new")
        );
    }
}
