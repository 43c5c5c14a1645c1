#!/usr/bin/env bash
# Builds the release portal (wasm, JS, CSS under target/site) and server for `make run`.
# The front end is built again only when one of its inputs changed since its last build —
# the app and domain crates, the style, the assets, the manifests, the lock file, the cargo
# configuration (its flags erase the views), this script (the wasm's flags below), the tools'
# versions — since `cargo leptos build --release --split` otherwise reruns the split,
# wasm-bindgen and `wasm-opt -Oz` (once per split module, about 530 of them) on an unchanged
# wasm every time (about 10 minutes on 2 cores).
# The server is always handed to cargo, which does nothing when it is up to date. The stamp
# holds the inputs' digest and the built files' own.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE=target/site
STAMP=$SITE/.front-end-inputs

log() { printf '[run] %s\n' "$*" >&2; }

# The release wasm is built for size with the options Leptos's guide to binary size names,
# unstable ones that RUSTC_BOOTSTRAP enables on this stable toolchain for this build only:
# - the standard library is compiled with the wasm (`build-std`, from the rust-src component
#   `make tools` adds), so that the next option reaches it too;
# - a panic aborts at once (`-Cpanic=immediate-abort`): no message is formatted, and the
#   formatting and unwinding code goes; a panic in the browser shows as "unreachable" in the
#   console instead of its message;
# - panic locations carry no file, line and column (`-Zlocation-detail=none`).
# Together they take 10 % off the main module (318 KB gzip instead of 354) and 7 % off the
# first page (456 KB instead of 493). The server, and the debug wasm the browser tests run
# against, keep the stable defaults and their panic messages. `--cfg erase_components` is
# repeated from .cargo/config.toml, which these flags replace for the wasm. Edit this file
# only between builds: bash reads a script as it runs it.
WASM_RUSTFLAGS="--cfg erase_components -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none"

inputs() {
  {
    rustc --version
    cargo leptos --version
    wasm-bindgen --version
    wasm-opt --version 2>/dev/null || true
    find app domain style public Cargo.toml Cargo.lock .cargo/config.toml scripts/site-release.sh \
      -type f -not -path '*/target/*' -print0 |
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
  log "building the portal's front end: the wasm (about 4 min on 2 cores when the app changed), its split by route, wasm-bindgen and wasm-opt -Oz on each of the ~530 modules (about 10 min); the server is rebuilt only where it changed"
else
  log "first build: the portal's wasm with its standard library (about 8 min on 2 cores), its split by route, wasm-bindgen and wasm-opt -Oz on each of the ~530 modules (about 10 min), and the server beside them (about 13 min): about 22 min in all — later runs take seconds"
fi
started=$SECONDS
rm -f "$STAMP"
# The front end and the server build at once, as `cargo leptos build` would build them, but in
# two processes: only the wasm's takes the size options, whose environment must not reach the
# server's build (`build-std` wants a `--target`; under RUSTC_BOOTSTRAP some build scripts
# answer otherwise, and cargo would build the server's dependencies a second time).
cargo leptos build --release --server-only &
server=$!
front_ok=0
RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$WASM_RUSTFLAGS" \
  cargo leptos build --release --split --frontend-only || front_ok=$?
wait "$server"
[ "$front_ok" = 0 ] || exit "$front_ok"
# The portal works either way; the check (failing `make site`, and so the tests) tells a
# developer, not the person running it.
bash scripts/weight.sh --split-check || log "serving anyway, with a heavier first page"
echo "$now $(outputs)" >"$STAMP"
log "built in $((SECONDS - started)) s"
