#!/usr/bin/env bash
# Runs the cluster tests of the published kube-rs crates (`kube`, `kube-client`,
# `kube-runtime`: the tests they mark `#[ignore]` as needing a cluster or a
# kubeconfig) against a fresh opkit-envtest, and prints "N passed, M failed".
#
# Usage: opkit-envtest/scripts/kube-rs-cluster-tests.sh [kube version, default 5.0.0]
# Environment: KUBE_RS_WORK, the scratch directory (default target/kube-rs-tests).
# Exit status: 0 once the tests ran, whatever their results.
set -euo pipefail

version=${1:-5.0.0}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${KUBE_RS_WORK:-$root/target/kube-rs-tests}
crates=(kube kube-client kube-runtime kube-core kube-derive)
mkdir -p "$work/fetch/src"

# The crates' published sources, as cargo fetches them.
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "kube-rs-sources"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
kube = { version = "=$version", features = ["derive", "runtime", "ws"] }

[workspace]
EOF
echo 'fn main() {}' >"$work/fetch/src/main.rs"
cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
source_of() {
    cargo metadata --format-version 1 --manifest-path "$work/fetch/Cargo.toml" |
        python3 -c 'import json, sys, os
name, version = sys.argv[1:]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name and p["version"] == version:
        print(os.path.dirname(p["manifest_path"]))' "$1" "$version"
}

# One workspace of writable copies, the crates patched to each other, so that
# each is built once. Publishing dropped the path-only dev-dependency of
# kube-client's and kube-runtime's tests on kube: it is put back.
tree="$work/kube-$version"
mkdir -p "$tree"
patches=""
for crate in "${crates[@]}"; do
    src=$(source_of "$crate")
    [[ -n "$src" ]] || { echo "no sources of $crate $version" >&2; exit 1; }
    rm -rf "${tree:?}/$crate"
    cp -a "$src" "$tree/$crate"
    chmod -R u+w "$tree/$crate"
    patches+="$crate = { path = \"$crate\" }"$'\n'
done
for crate in kube-client kube-runtime; do
    printf '\n[dev-dependencies.kube]\npath = "../kube"\nfeatures = ["derive", "runtime", "ws"]\n' >>"$tree/$crate/Cargo.toml"
done
cat >"$tree/Cargo.toml" <<EOF
[workspace]
members = ["kube", "kube-client", "kube-runtime"]
resolver = "2"

[patch.crates-io]
$patches
EOF

# The tests that need a cluster: the functions after an ignore attribute saying so
# (not the kubelet's debug endpoints, which opkit-envtest does not serve).
mapfile -t wanted < <(
    for crate in kube kube-client kube-runtime; do
        find "$tree/$crate/src" -name '*.rs' -print0 | xargs -0 awk '
            /^[[:space:]]*#\[ignore = "(needs cluster|requires a cluster|needs kubeconfig)/ { pending = 1; next }
            pending && match($0, /fn [a-z0-9_]+/) { print substr($0, RSTART + 3, RLENGTH - 3); pending = 0 }'
    done | sort -u
)

cargo build --quiet --manifest-path "$root/Cargo.toml" -p opkit-envtest --bin opkit-envtest
features=kube-client/ws,kube-client/rustls-tls,kube-client/openssl-tls,kube-client/unstable-client,kube/derive,kube/runtime,kube/ws
cargo test --quiet --no-run --manifest-path "$tree/Cargo.toml" \
    -p kube -p kube-client -p kube-runtime --features "$features" --lib

kubeconfig="$work/kubeconfig"
rm -f "$kubeconfig"
"${CARGO_TARGET_DIR:-$root/target}/debug/opkit-envtest" --write-kubeconfig "$kubeconfig" >"$work/server.out" 2>"$work/server.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    [[ -s "$kubeconfig" ]] && break
    sleep 0.1
done
[[ -s "$kubeconfig" ]] || { echo "opkit-envtest did not start: $(cat "$work/server.log")" >&2; exit 1; }

log="$work/test.log"
KUBECONFIG="$kubeconfig" cargo test --no-fail-fast --manifest-path "$tree/Cargo.toml" \
    -p kube -p kube-client -p kube-runtime --features "$features" --lib \
    -- --ignored --test-threads=1 "${wanted[@]}" >"$log" 2>&1 || true

passed=0
failed=0
missing=0
for name in "${wanted[@]}"; do
    if grep -Eq "^test (.*::)?$name \.\.\. ok$" "$log"; then
        passed=$((passed + 1))
        echo "ok      $name"
    elif grep -Eq "^test (.*::)?$name \.\.\. FAILED$" "$log"; then
        failed=$((failed + 1))
        echo "FAILED  $name"
    else
        missing=$((missing + 1))
        echo "not run $name (not a test in this build: disabled upstream or compiled out)"
    fi
done
echo "details: $log"
echo "$missing not run"
echo "$passed passed, $failed failed"

