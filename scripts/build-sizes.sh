#!/usr/bin/env bash
# Clean release builds of the WebApp operator in three feature sets of opkit, each in a fresh
# target directory: prints the wall time of the build and the size of the stripped binary.
#
#   shipped   the example as `cargo build --release --example webapp` builds it: default
#             features (cli, webhooks) and `embedded` (the in-process API server)
#   default   the same operator and admission policies with opkit's default features only
#   lean      the operator's reconcile on `opkit::Manager`, `default-features = false`: no CLI,
#             no webhook stack
#
# Usage: scripts/build-sizes.sh [shipped|default|lean ...]   (all three by default)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The workspace's release profile, so every variant is built alike.
profile="$(sed -n '/^\[profile.release\]/,/^$/p' "$root/Cargo.toml")"

# A crate beside the workspace using its sources and its lockfile (same versions, offline).
variant_crate() {
    local name="$1" features="$2" main="$3"
    local dir="$work/$name"
    mkdir -p "$dir/src"
    cat > "$dir/Cargo.toml" <<TOML
[package]
name = "webapp-$name"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
opkit = { path = "$root/opkit", $features }
kube = { version = "5", default-features = false, features = ["client", "rustls-tls", "ring", "runtime", "derive"] }
k8s-openapi = { version = "0.29", default-features = false, features = ["std", "v1_35", "schemars"] }
schemars = "1"
serde = { version = "1", features = ["derive"] }
serde_json = "1"
tokio = { version = "1", features = ["rt-multi-thread", "macros", "signal"] }
tracing = "0.1"

$profile
TOML
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    printf '%s\n' "$main" > "$dir/src/main.rs"
    echo "$dir"
}

measure() {
    local label="$1" dir="$2"; shift 2
    local target="$work/target-$label"
    local start end
    start=$(date +%s)
    (cd "$dir" && CARGO_TARGET_DIR="$target" cargo build --release --quiet "$@")
    end=$(date +%s)
    local bin
    bin=$(find "$target/release" -maxdepth 2 -type f -executable -name 'webapp*' ! -name '*.d' | head -n1)
    printf '%-8s %4d s  %6.1f MiB\n' "$label" $((end - start)) "$(echo "$(stat -c %s "$bin") / 1048576" | bc -l)"
}

modules="#[path = \"$root/examples/webapp/types.rs\"]
mod types;
#[path = \"$root/examples/webapp/reconcile.rs\"]
mod reconcile;"

for variant in "${@:-shipped default lean}"; do
    for v in $variant; do
        case "$v" in
            shipped)
                measure shipped "$root" --example webapp ;;
            default)
                dir=$(variant_crate default 'features = []' "$modules
#[path = \"$root/examples/webapp/policy.rs\"]
mod policy;

fn main() -> std::process::ExitCode {
    let app = opkit::App::new(\"webapp-operator\").operator::<types::WebApp>();
    policy::enforce(app, policy::WebAppPolicy::from_env()).run()
}")
                measure default "$dir" ;;
            lean)
                dir=$(variant_crate lean 'default-features = false' "$modules

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await?;
    let running = opkit::Manager::new(client).operator::<types::WebApp>().start();
    tokio::signal::ctrl_c().await?;
    running.shutdown().await;
    Ok(())
}")
                measure lean "$dir" ;;
            *) echo "unknown variant $v (shipped, default, lean)" >&2; exit 2 ;;
        esac
    done
done
