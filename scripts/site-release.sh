#!/usr/bin/env bash
# Builds the release portal (wasm, JS, CSS under target/site) and server for `make run`.
# The front end is built again only when one of its inputs changed since its last build —
# the app and domain crates, the style, the assets, the manifests, the lock file, the cargo
# configuration (its flags erase the views), the tools' versions — since `cargo leptos
# build --release --split` otherwise reruns the split, wasm-bindgen and `wasm-opt -Oz` (once
# per split module, about 530 of them) on an unchanged wasm every time (about 8 minutes on 2
# cores).
# The server is always handed to cargo, which does nothing when it is up to date. The stamp
# holds the inputs' digest and the built files' own.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE=target/site
STAMP=$SITE/.front-end-inputs

log() { printf '[run] %s\n' "$*" >&2; }

inputs() {
  {
    rustc --version
    cargo leptos --version
    wasm-bindgen --version
    wasm-opt --version 2>/dev/null || true
    find app domain style public Cargo.toml Cargo.lock .cargo/config.toml -type f -not -path '*/target/*' -print0 |
      sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

# What the last release build left in the site: a debug build (`make site`, the browser
# tests) writes the same files, and must not pass for it.
outputs() {
  find "$SITE/pkg" -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}

now=$(inputs)
if [ -s "$SITE/pkg/flotilla.wasm" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$now $(outputs)" ]; then
  log "the portal's front end is unchanged since its last build: building the server only (seconds when it is built too)"
  cargo leptos build --release --server-only
  exit 0
fi

if [ -x target/release/flotilla ]; then
  log "building the portal's front end: the wasm (about 3 min on 2 cores when the app changed), its split by route, wasm-bindgen and wasm-opt -Oz on each of the ~530 modules (about 8 min); the server is rebuilt only where it changed"
else
  log "first build: the portal's wasm (about 3 min on 2 cores), its split by route, wasm-bindgen and wasm-opt -Oz on each of the ~530 modules (about 8 min), then the server (about 13 min) — later runs take seconds"
fi
started=$SECONDS
rm -f "$STAMP"
cargo leptos build --release --split
echo "$now $(outputs)" >"$STAMP"
log "built in $((SECONDS - started)) s"
