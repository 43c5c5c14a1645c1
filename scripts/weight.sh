#!/usr/bin/env bash
# What each portal route makes the browser download: wasm, JS and CSS, raw and gzip (level 9,
# about what the server's on-the-fly gzip sends), from the site in target/site (or $1) as the
# last build left it — run `make site-release` first for the figures that ship.
#
# A build split by route (`cargo leptos build --split`, `__wasm_split_manifest.json` present)
# counts for a route the main module plus the chunks the manifest lists for its lazy view
# (`__<route>_view_<hash>`, the route types named below), and every split loader's JS; an
# unsplit build counts the one module for every route. The budget (issue 20): the first page
# at most 350 KB gzip, no route above 500 KB. Exits 1 when a route is over its budget and
# FLOTILLA_WEIGHT_STRICT=1.
#
# It always checks that the split moved each page's read-only data (strings, templates) out
# of the main module with the page's code, and exits 1 if it did not (see `SPLIT_ROOM` in
# app/src/lib.rs); `--split-check` does only that (`make site` runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
check_only=0
if [ "${1:-}" = --split-check ]; then
  check_only=1
  shift
fi
exec python3 - "${1:-target/site}" "$check_only" <<'EOF'
import gzip, importlib.util, json, os, sys

pkg = os.path.join(sys.argv[1], "pkg")
check_only = sys.argv[2] == "1"
FIRST, ROUTE = 350_000, 500_000
# route path -> its route type in app/src/routes.rs, snake-cased as the lazy view's split
# is named (`__<route>_view_<hash>`)
ROUTES = {
    "/login": "login_route", "/": "overview_route", "/scale-sets": "scale_sets_route",
    "/scale-sets/new": "new_scale_set_route",
    "/scale-sets/:name": "scale_set_overview_route",
    "/scale-sets/:name/instances": "scale_set_instances_route",
    "/scale-sets/:name/scaling": "scale_set_scaling_route",
    "/scale-sets/:name/upgrades": "scale_set_upgrades_route",
    "/scale-sets/:name/health": "scale_set_health_route",
    "/scale-sets/:name/load-balancer": "scale_set_load_balancer_route",
    "/scale-sets/:name/monitoring": "scale_set_monitoring_route",
    "/scale-sets/:name/activity": "scale_set_activity_route",
    "/scale-sets/:name/settings": "scale_set_settings_route",
    "/scale-sets/:name/instances/:id/console": "console_route", "/activity": "activity_route",
    "/hosts": "hosts_route", "/replicas": "replicas_route", "/tokens": "tokens_route",
}


def size(name):
    data = open(os.path.join(pkg, name), "rb").read()
    return len(data), len(gzip.compress(data, 9))


def total(names):
    sizes = [size(n) for n in names]
    return sum(s[0] for s in sizes), sum(s[1] for s in sizes)


# The section reader of scripts/wasm-weight.py (a file name Python cannot import by name).
spec = importlib.util.spec_from_file_location("wasm_weight", "scripts/wasm-weight.py")
wasm_weight = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wasm_weight)


def data_bytes(name):
    """The size of a module's data section (its read-only data and statics)."""
    data = open(os.path.join(pkg, name), "rb").read()
    return sum(size for kind, _, _, size in wasm_weight.sections(data) if kind == 11)


files = os.listdir(pkg)
manifest = os.path.join(pkg, "__wasm_split_manifest.json")
if os.path.exists(manifest):
    # The split lays the data out by module only when it fits where the linker put it;
    # otherwise all of it stays in the main module. A page's chunks then hold its code but
    # not its strings and templates.
    main = data_bytes("flotilla.wasm")
    every = sum(data_bytes(f) for f in files if f.endswith(".wasm"))
    print(f"read-only data: {main/1e3:.0f} KB of {every/1e3:.0f} KB in the main module")
    if main > every / 2:
        sys.exit("the split left the pages' read-only data in the main module: "
                 "make SPLIT_ROOM in app/src/lib.rs larger")
if check_only:
    sys.exit(0)
js = ["flotilla.js"] + [f for f in files if f.startswith("__wasm_split") and f.endswith(".js")]
css = [f for f in files if f.endswith(".css")]
chunks = json.load(open(manifest)) if os.path.exists(manifest) else None
print(f"{pkg}: {'split' if chunks else 'one module'}; gzip -9; KB = 1000 bytes")
print(f"{'route':42} {'wasm raw':>9} {'gz':>7} {'JS raw':>7} {'gz':>6} {'CSS raw':>7} {'gz':>6} {'total gz':>9}")
js_size, css_size = total(js), total(css)
over = False
for route, view in ROUTES.items():
    wasm = ["flotilla.wasm"]
    if chunks:
        key = next((k for k in chunks if k.rsplit("_", 1)[0] == f"__{view}_view"), None)
        if key is None:
            sys.exit(f"no split for {route} (__{view}_view_*) in {manifest}")
        wasm += [c + ".wasm" for c in chunks[key]]
    w = total(wasm)
    gz = w[1] + js_size[1] + css_size[1]
    budget = FIRST if route in ("/", "/login") else ROUTE
    flag = "  over" if gz > budget else ""
    over |= gz > budget
    print(f"{route:42} {w[0]/1e3:9.0f} {w[1]/1e3:7.0f} {js_size[0]/1e3:7.0f} {js_size[1]/1e3:6.0f}"
          f" {css_size[0]/1e3:7.0f} {css_size[1]/1e3:6.0f} {gz/1e3:9.0f}{flag}")
if over and os.environ.get("FLOTILLA_WEIGHT_STRICT") == "1":
    sys.exit(1)
EOF
