#!/usr/bin/env bash
# Starts a debug Flotilla on a free port with a fresh data directory and authentication on
# (its first user, `admin`, gets the password in FLOTILLA_ADMIN_PASSWORD), runs the
# Playwright suite in Debian's Chromium against it signed in as that user, and stops it.
# The server binary is taken from CARGO_TARGET_DIR (default ./target), the site from
# ./target/site (where cargo-leptos writes it).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-./target}
export FLOTILLA_ADMIN_PASSWORD=${FLOTILLA_ADMIN_PASSWORD:-e2e-admin-password}
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FLOTILLA_LOG=warn "$target/debug/flotilla" serve --listen "127.0.0.1:$port" --data-dir "$data" \
  --auth local --mock-latency 300ms --metrics-interval 1s --site-root "$PWD/target/site" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done
cd end2end
status=0
# A report left by an earlier run must not pass for this one's.
rm -f test-results/results.json
FLOTILLA_E2E_URL="http://127.0.0.1:$port" FLOTILLA_E2E_USER=admin \
  FLOTILLA_E2E_PASSWORD="$FLOTILLA_ADMIN_PASSWORD" npx playwright test "$@" || status=$?
# The errors, last (the list reporter prints them before every attachment), also those of a
# test that passed on its retry.
if [ -f test-results/results.json ]; then node failures.mjs || true; fi
exit "$status"
