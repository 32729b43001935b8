//! The getting-started chapter (`docs/getting-started.md`) as a reader follows it: its
//! `cargo opkit` commands run in order, every file it shows (a code block after a
//! `<!-- file: PATH -->` line) written into the project, then the project's `cargo fmt --check`,
//! `cargo test` and `cargo opkit manifests --check`.

use std::path::Path;

use super::project::{cargo, ok, opkit, stdout, workspace};

/// A file the chapter shows in full.
struct Listing {
    path: String,
    content: String,
}

/// The chapter's `cargo opkit` commands, in order, and its file listings: code blocks right
/// after a `<!-- file: PATH -->` line.
fn read(chapter: &str) -> (Vec<Vec<String>>, Vec<Listing>) {
    let mut commands = Vec::new();
    let mut listings = Vec::new();
    let mut file = None;
    let mut lines = chapter.lines();
    while let Some(line) = lines.next() {
        if let Some(path) = line
            .strip_prefix("<!-- file: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        {
            file = Some(path.to_owned());
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            file = None;
            continue;
        };
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if let Some(path) = file.take() {
            listings.push(Listing {
                path,
                content: block.iter().map(|l| format!("{l}\n")).collect(),
            });
        } else if info == "sh" {
            for command in block {
                let command = command.split("  #").next().unwrap_or_default().trim();
                if let Some(args) = command.strip_prefix("cargo opkit ") {
                    commands.push(args.split_whitespace().map(str::to_owned).collect());
                }
            }
        }
    }
    (commands, listings)
}

#[test]
fn the_getting_started_chapter_builds_and_passes() {
    let _one_project_at_a_time = super::project::exclusive();
    let workspace = workspace();
    let chapter = std::fs::read_to_string(workspace.join("docs/getting-started.md"))
        .expect("reads the chapter");
    let (commands, listings) = read(&chapter);
    assert!(
        listings.len() >= 4,
        "the chapter's file listings were not found"
    );

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let mut dir = tmp.path().to_path_buf();
    let mut manifests = Vec::new();
    for args in &commands {
        match args.first().map(String::as_str) {
            Some("new") => {
                ok(opkit(&dir).args(args).arg("--opkit-path").arg(&workspace));
                dir = dir.join(&args[1]);
            }
            Some("create") => {
                ok(opkit(&dir).args(args));
            }
            _ => manifests.push(args),
        }
    }
    assert!(
        dir.join(".opkit").is_file(),
        "the chapter's `cargo opkit new` did not run"
    );
    for listing in &listings {
        let path = dir.join(&listing.path);
        assert!(
            path.is_file(),
            "the chapter shows {}, which the scaffold did not write",
            listing.path
        );
        std::fs::write(&path, &listing.content).expect("writes the listing");
    }
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock"))
        .expect("copies the lock file");
    super::project::formatted(&dir);
    let tested = ok(cargo(&dir).arg("test"));
    let report = stdout(&tested);
    assert!(
        report.contains("static_site::the_sample_static_site_serves_its_page ... ok"),
        "{report}"
    );
    assert!(
        !manifests.is_empty(),
        "the chapter runs no `cargo opkit manifests`"
    );
    for args in manifests {
        ok(opkit(&dir).args(args));
    }
    ok(opkit(&dir).args(["manifests", "--check"]));
    assert!(Path::new(&dir.join("charts/static-site-operator/Chart.yaml")).is_file());
}
