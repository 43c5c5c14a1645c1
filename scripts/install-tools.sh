#!/usr/bin/env bash
# Installs the build tools Flotilla needs that a fresh machine lacks: the wasm32 target, the
# standard library's source (the release wasm rebuilds it for size, see site-release.sh),
# cargo-leptos and wasm-bindgen-cli (built from source with the dependency pins that let them
# build with this toolchain and registry mirror). Idempotent: does nothing when present.
set -euo pipefail

CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
LEPTOS_VERSION=0.3.11
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
BINDGEN_VERSION=$(grep -A1 '^name = "wasm-bindgen"$' "$(dirname "$0")/../Cargo.lock" 2>/dev/null |
  sed -n 's/^version = "\(.*\)"/\1/p' || true)
BINDGEN_VERSION=${BINDGEN_VERSION:-0.2.130}

log() { printf '[install-tools] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
if ! rustup component list --installed | grep -q '^rust-src'; then
  log "adding the rust-src component"
  rustup component add rust-src
fi

# Builds crate $1@$2 from its published source after pinning dependency $3 to version $4.
install_pinned() {
  local krate=$1 version=$2 dep=$3 dep_version=$4
  log "building $krate $version from source (pinning $dep to $dep_version)"
  # A plain install fails on this toolchain, but it leaves the source unpacked in the registry.
  cargo install --locked "$krate@$version" >/dev/null 2>&1 || true
  local src
  src=$(ls -d "$CARGO_HOME"/registry/src/*/"$krate-$version" 2>/dev/null | head -n 1)
  if [ -z "$src" ]; then
    log "could not fetch the source of $krate $version"
    exit 1
  fi
  local work
  work=$(mktemp -d)
  cp -r "$src" "$work/"
  (
    cd "$work/$krate-$version"
    cargo update -p "$dep" --precise "$dep_version"
    CARGO_TARGET_DIR="$work/target" cargo install --locked --path .
  )
  rm -rf "$work"
}

# The three build at once (each has long single-threaded stretches — linking, the last
# crates — that the others fill), each logging as it goes.
pids=()
if ! cargo leptos --version 2>/dev/null | grep -q "$LEPTOS_VERSION"; then
  log "cargo-leptos is missing: building it (about 11-20 min on 2 cores, alongside the others)"
  install_pinned cargo-leptos "$LEPTOS_VERSION" cargo-util-schemas 0.14.1 &
  pids+=($!)
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
  log "wasm-bindgen-cli is missing: building it (about 2-4 min alone)"
  install_pinned wasm-bindgen-cli "$BINDGEN_VERSION" webpki-roots 1.0.10 &
  pids+=($!)
fi
if ! command -v leptosfmt >/dev/null; then
  log "leptosfmt is missing: building it (about 3 min alone)"
  cargo install --locked leptosfmt@0.1.33 &
  pids+=($!)
fi
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if [ "$failed" = 1 ]; then
  log "a tool failed to build (see above)"
  exit 1
fi
log "tools ready: $(cargo leptos --version), $(wasm-bindgen --version), $(leptosfmt --version)"
