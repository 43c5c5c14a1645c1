#!/usr/bin/env bash
# Load balancer benchmark: Flotilla's L7 frontend against nginx and direct, on loopback.
# Installs nginx and wrk when missing (Debian/Ubuntu, as root), then runs the bench binary
# `server/lb/benches/proxy.rs`, which starts every process itself and prints the figures.
# Knobs (read by the bench): BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (64),
# BENCH_ROUNDS (3), BENCH_WARMUP (s, 2), BENCH_CPU_{LOAD,PROXY,UPSTREAMS},
# BENCH_FLOTILLA_RUNTIME=current. Extra arguments go to cargo.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '[bench-lb] %s\n' "$*" >&2; }

# Debian puts nginx in /usr/sbin, which a non-root PATH may lack (the bench looks there too).
if ! { command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null || ! command -v wrk >/dev/null; then
  log "installing nginx and wrk"
  # Keep the package scripts from starting a system nginx on :80 (invoke-rc.d honours this).
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # nginx-light is gone from recent releases; the plain package has the upstream module too.
  apt-get install -y -qq nginx-light wrk >/dev/null 2>&1 ||
    apt-get install -y -qq nginx wrk >/dev/null
  if [ -n "$created_policy" ]; then rm -f "$policy"; fi
  # Belt and braces: no system nginx must stay behind (the bench runs its own).
  service nginx stop >/dev/null 2>&1 || true
fi

cargo bench -p flotilla-lb --bench proxy "$@"
