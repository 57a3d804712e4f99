# Envline: `make run` serves the dashboard on a demo repository,
# `make test` runs every check and test. Both install what is missing first.

SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# Leptos reads this at compile time (it names the wasm file the page loads);
# cargo-leptos sets it for its builds, so every other cargo command here sets
# the same value: the test build then reuses, not replaces, the server binary.
export LEPTOS_OUTPUT_NAME := envline
# Tests share the release build with the site, so everything compiles once.
CARGO_TEST := cargo test --release -p envline-api -p envline-engine -p app -p envline --features app/ssr

.PHONY: run test setup build dist fmt-check clippy unit contract e2e bench demo-clean

## Set up, build and serve the demo on http://127.0.0.1:3000
run: setup build
	@echo "envline: open http://127.0.0.1:3000 (Ctrl-C stops it; the demo lives in ./envline-demo)"
	./target/release/envline demo --dir envline-demo

## Set up, then formatting, lints, unit and HTTP tests, the release site, the
## API contract (schemathesis), and Playwright in Chromium
test: setup-browser fmt-check clippy build unit contract e2e

setup:
	@.ci/setup

setup-browser:
	@.ci/setup --browser

## The release site, then the server with the site embedded in it; --split
## puts every page but the pipeline in a wasm chunk of its own, loaded when
## the page is visited. The site is built first so the server embeds the new one.
build:
	cargo leptos build --release --split --frontend-only
	cargo leptos build --release --split --server-only

## One file to deploy: dist/envline-<version>-<target>.tar.gz with the binary
## (the site in it), envline.example.toml, the README and deploy/
dist: setup build
	.ci/dist

fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --release -p envline-api -p envline-engine -p app -p envline --all-targets --features app/ssr -- -D warnings
	cargo clippy --release -p frontend --target wasm32-unknown-unknown -- -D warnings

## Every cargo test on SQLite, then again on a PostgreSQL of their own
unit:
	$(CARGO_TEST)
	.ci/with-postgres $(CARGO_TEST)

## Every check of schemathesis on requests generated from the OpenAPI document
contract:
	.ci/api-contract

e2e:
	rm -rf .envline-test/e2e
	cd end2end && npx playwright test

## Speed figures (see the README)
bench: build
	cargo run --release -p envline-engine --example bench
	.ci/with-postgres cargo run --release -p envline-engine --example bench status
	.ci/with-postgres cargo bench -p envline --features app/ssr --bench replicas
	.ci/bench-http
	node end2end/bench/pages.mjs
	node end2end/bench/history.mjs
	node end2end/bench/notify.mjs
	node end2end/bench/webhook.mjs

demo-clean:
	rm -rf envline-demo
