#!/usr/bin/env bash
# Schemathesis against a debug Flotilla: every operation of /api/v1/openapi.json, with
# boundary values, random valid and invalid requests and multi-step sequences, judged by all of Schemathesis's checks (no 5xx; every status, media type,
# header and body as the document says; invalid input refused, valid input accepted).
# Bounded and deterministic: a fixed seed, a fixed number of cases per operation, one
# worker, no example database or cache carried between runs — a failure reproduces.
#
# Needs ./target/debug/flotilla (`make unit` builds it). Installs the pinned Schemathesis
# (scripts/schemathesis-requirements.txt) into target/schemathesis-venv when missing.
# Extra arguments go to `schemathesis run` (e.g. `--include-path /scale-sets`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=target/schemathesis-venv
requirements=scripts/schemathesis-requirements.txt
if [ ! -x "$venv/bin/schemathesis" ] || [ "$requirements" -nt "$venv/.installed" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$venv/.installed"
fi

binary=./target/debug/flotilla
[ -x "$binary" ] || { echo "schemathesis.sh: $binary is missing: run cargo build -p flotilla --features libvirt" >&2; exit 1; }

data=$(mktemp -d)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A small fleet: valid capacities the fuzzer draws beyond it are refused (422), not created.
FLOTILLA_LOG=warn FLOTILLA_ADMIN_PASSWORD=schemathesis-admin "$binary" serve --listen "127.0.0.1:$port" --data-dir "$data" \
  --mock-latency 0 --max-instances 12 >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$work"' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 150); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$work/server.log" >&2; echo "schemathesis.sh: the server stopped" >&2; exit 1; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "schemathesis.sh: the server is not ready" >&2; exit 1; }

# The test identity: the first user (an Owner) signs in for a token sent with every
# request; a second token is the one `DELETE /tokens/{id}` may revoke.
api="http://127.0.0.1:$port/api/v1"
login() {
  curl -sf -H 'Content-Type: application/json' "$api/login" \
    -d "{\"username\":\"admin\",\"password\":\"schemathesis-admin\",\"token_name\":\"$1\"}"
}
token=$(login schemathesis | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
decoy=$(login decoy | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
[ -n "$token" ] && [ -n "$decoy" ] || { echo "schemathesis.sh: could not sign in" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token")

# Something to find: scale sets for the operations to act on — `web` for those on a set
# (which change its capacity, so its instances come and go), `pool`, whose two instances
# stay put for the operations on an instance, `victim`, whose two take the actions (delete
# among them), and `spare` for DELETE to delete.
for set in web:2 pool:2 victim:2 spare:0; do
  curl -sf "${auth[@]}" -H 'Content-Type: application/json' "$api/scale-sets" -d "{\"name\":\"${set%:*}\",
    \"capacity\":${set#*:},\"model\":{\"image\":\"debian-12\",\"vcpus\":1,\"memory_mib\":512,\"disk_gib\":10}}" \
    >/dev/null || { echo "schemathesis.sh: could not create the scale set ${set%:*}" >&2; exit 1; }
done
instances_of() {
  local ids=
  for _ in $(seq 1 100); do
    ids=$(curl -sf "${auth[@]}" "$api/scale-sets/$1/instances" | python3 -c \
      'import json,sys; ids=[i["id"] for i in json.load(sys.stdin)["items"]]; print(json.dumps(ids) if len(ids) == 2 else "")')
    [ -n "$ids" ] && break
    sleep 0.2
  done
  [ -n "$ids" ] || { echo "schemathesis.sh: the instances of $1 did not appear" >&2; return 1; }
  echo "$ids"
}
pool=$(instances_of pool)
victim=$(instances_of victim)

cat >"$work/schemathesis.toml" <<EOF
seed = 1
workers = 1
continue-on-failure = true
# State kept between runs would make a run depend on the ones before it.
cache.enabled = false
generation.database = "none"
generation.max-examples = 40
# The CLI and scripts send it on every request: a state-changing request without a JSON
# body is refused (403) without it, as a cross-site form would be.
headers = { X-Flotilla-Request = "1", Authorization = "Bearer $token" }

# Most generated names and instance ids are of the sets and instances above, so that the
# operations get past 404 to their logic.
[dictionaries]
web = { values = ["web"] }
pool = { values = ["pool"] }
pool-instances = { values = $pool }
victim = { values = ["victim"] }
victim-instances = { values = $victim }
spare = { values = ["spare"] }
decoy = { values = [$decoy] }

[parameters]
"path.name" = { dictionary = "web", probability = 0.75 }

# Schema-valid is not the same as valid: the document gives the types and shapes, the
# server also checks what JSON Schema cannot say (ranges stated in descriptions, zones and
# images the backend has, cross-field rules, whether a name is taken) and answers 422
# naming each field — the documented, deliberate answer to such a request. Every other
# refusal of valid data (400, 405, 413, 415…) still fails the check.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

# The event stream never ends: read it for a second (its events are still checked against
# the schema) instead of the default ten, a few times.
[[operations]]
include-path = "/events"
request-timeout = 1
generation.max-examples = 5

# The operations on an instance: actions on victim's, the others on pool's (the first
# entry that matches an operation wins).
[[operations]]
include-name = "POST /scale-sets/{name}/instances/{id}/{action}"
parameters = { "path.name" = { dictionary = "victim", probability = 0.75 }, "path.id" = { dictionary = "victim-instances", probability = 0.75 } }

[[operations]]
include-path-regex = '/instances/\{id\}'
parameters = { "path.name" = { dictionary = "pool", probability = 0.75 }, "path.id" = { dictionary = "pool-instances", probability = 0.75 } }

# Revoking revokes the decoy token, not the one every request carries.
[[operations]]
include-name = "DELETE /tokens/{id}"
parameters = { "path.id" = { dictionary = "decoy", probability = 1.0 } }

# DELETE deletes spare, not web, which the other operations still need.
[[operations]]
include-name = "DELETE /scale-sets/{name}"
parameters = { "path.name" = { dictionary = "spare", probability = 0.75 } }
EOF

(
  cd "$work"
  "$root/$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" --no-color \
    run "http://127.0.0.1:$port/api/v1/openapi.json" --checks all "$@"
) || {
  echo "--- server log (warnings and errors) ---" >&2
  tail -n 50 "$work/server.log" >&2
  exit 1
}
