//! Running `cargo opkit` and the cargo of a scaffolded project from tests.
//!
//! opkit is a path dependency on this workspace, so a project is built against the code under
//! test, offline, with this workspace's lock file and target directory: the registry crates are
//! built once for both, and a project adds its own crate and opkit's (a path dependency outside
//! the project's workspace gets the project's dependency profile, so it is built apart from this
//! workspace's copy instead of overwriting it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Held by a test while it builds and tests a project: projects share the target directory (a
/// second build would wait for the first) and the machine's cores.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static PROJECTS: Mutex<()> = Mutex::new(());
    PROJECTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This workspace's root.
pub fn workspace() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// This workspace's target directory (`CARGO_TARGET_TMPDIR` is its `tmp/`).
pub fn target() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .expect("tmp/ is in the target directory")
        .to_path_buf()
}

/// Runs `command` and fails the test unless it succeeds; returns its output.
pub fn ok(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{shown} does not start: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cargo opkit ARGS` in `dir`.
pub fn opkit(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-opkit"));
    command.arg("opkit").current_dir(dir).envs(cargo_env());
    command
}

/// `cargo fmt --check` in `dir`: the project is formatted as rustfmt formats it. rustfmt comes
/// with rustup's default profile; a toolchain installed with the minimal one lacks it.
pub fn formatted(dir: &Path) {
    let fmt = cargo(dir).args(["fmt", "--version"]).output();
    assert!(
        fmt.is_ok_and(|out| out.status.success()),
        "`cargo fmt` is not installed: `rustup component add rustfmt`"
    );
    ok(cargo(dir).args(["fmt", "--check"]));
}

/// `cargo ARGS` in `dir`.
pub fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(dir).envs(cargo_env());
    command
}

/// Offline, in this workspace's target directory.
fn cargo_env() -> [(&'static str, PathBuf); 3] {
    [
        ("CARGO_TARGET_DIR", target()),
        ("CARGO_NET_OFFLINE", "true".into()),
        ("CARGO", env!("CARGO").into()),
    ]
}

/// What `out` printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
