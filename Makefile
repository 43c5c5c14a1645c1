# Flotilla's two commands: `make run` and `make test`. Both install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := run

CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(CARGO_BIN):$(PATH)
# The PostgreSQL the store and black-box tests use (trust auth on this kind of machine).
FLOTILLA_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/postgres
export FLOTILLA_TEST_POSTGRES
# CI builds once from a clean clone: incremental artifacts only cost time and disk there.
ifdef CI
export CARGO_INCREMENTAL := 0
endif

.PHONY: run test tools node-tools chromium libvirt-deps site site-release lint unit api-fuzz test-vm e2e bench bench-lb clean-data

## Build the release portal and server, then serve on SQLite + the mock (FLOTILLA_* honoured).
run: tools node-tools libvirt-deps site-release
	@echo "Flotilla on http://127.0.0.1:3000 — sign in as admin at /login (or: flotilla login)."
	@echo "The first start prints admin's one-time password below (FLOTILLA_ADMIN_PASSWORD sets it);"
	@echo "lost it? ./target/release/flotilla user passwd admin --data-dir data"
	FLOTILLA_SITE_ROOT=$(CURDIR)/target/site ./target/release/flotilla serve

## The whole suite: formatting, lints, unit/property/conformance/black-box tests, the API
## against its OpenAPI document, real VMs, browser tests.
test: tools node-tools chromium libvirt-deps lint unit api-fuzz test-vm e2e

tools:
	@bash scripts/install-tools.sh

# Playwright (no browser download), axe-core for the accessibility scan, and wasm-opt
# (binaryen) for release builds. An older node_modules missing any of them is refreshed.
node-tools:
	@if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ] \
		|| [ ! -d end2end/node_modules/@axe-core/playwright ]; then \
		cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund; \
	fi

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# libvirt: make builds the server with the `libvirt` feature (a plain `cargo build` needs
# no libvirt) and tests it on libvirt's test driver (in-process); the real-VM test needs the
# daemons, QEMU, qemu-img and genisoimage. All from bookworm-backports (see the script).
libvirt-deps:
	@bash scripts/libvirt-deps.sh

site:
	cargo leptos build --split
	@bash scripts/weight.sh --split-check

# Skips the front end (wasm-bindgen, wasm-opt) when none of its inputs changed.
site-release:
	@bash scripts/site-release.sh

lint:
	cargo fmt --all -- --check
	leptosfmt --check app/src
	cargo clippy --workspace --all-targets --features flotilla-tests/libvirt -- -D warnings
	cargo clippy -p flotilla-app --features hydrate --target wasm32-unknown-unknown -- -D warnings
	cargo clippy -p flotilla-domain --target wasm32-unknown-unknown --lib --test browser_time_zone -- -D warnings

unit:
	cargo build -p flotilla --features libvirt
	cargo test --workspace --features flotilla-tests/libvirt
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
		cargo test -p flotilla-domain --target wasm32-unknown-unknown --test browser_time_zone

## Schemathesis against a debug server: generated requests to every operation of
## /api/v1/openapi.json, all checks, a fixed seed and number of cases. About a minute.
api-fuzz:
	cargo build -p flotilla --features libvirt
	bash scripts/schemathesis.sh

## Real QEMU guests (software emulation) through `flotilla serve --backend libvirt`: builds
## the tiny guest from Debian packages, starts libvirt's daemons if they are not running
## (and stops them after), scales a set of real VMs. Under 3 minutes. Then a libvirt host
## of the test's own libvirtd (unprivileged) cut off, crashed and back: to the backend, then
## through the server (its instances replaced, what it kept deleted when back).
test-vm: libvirt-deps
	bash scripts/tiny-guest.sh
	FLOTILLA_TEST_REAL_VMS=1 cargo test --workspace --features flotilla-tests/libvirt \
		--test blackbox real_vm:: -- --nocapture
	FLOTILLA_TEST_REAL_VMS=1 cargo test -p flotilla-backend --features libvirt \
		--test libvirt a_host_that_goes_away_and_comes_back -- --nocapture
	FLOTILLA_TEST_REAL_VMS=1 cargo test --workspace --features flotilla-tests/libvirt \
		--test blackbox libvirt::a_lost_host -- --nocapture

e2e: site
	bash scripts/e2e.sh

## Benchmarks that print figures (not part of `make test`).
bench:
	cargo bench -p flotilla --bench fleet
	cargo bench -p flotilla --bench portal
	cargo bench -p flotilla --bench auth
	cargo bench -p flotilla --bench replicas
	cargo bench -p flotilla --bench probes
	cargo bench -p flotilla --bench autoscale
	cargo bench -p flotilla --bench elasticity
	cargo bench -p flotilla --bench rollouts
	cargo bench -p flotilla-store --bench batch
	cargo bench -p flotilla-backend --features libvirt --bench libvirt

## Flotilla's L7 frontend against nginx and direct, same upstreams and load generator
## (installs nginx and wrk when missing).
bench-lb:
	bash scripts/bench-lb.sh

clean-data:
	rm -rf data
