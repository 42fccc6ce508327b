# The two that matter: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test deps build lint fmt openapi openapi-check openapi-validate clean dashboards-check deploy-check bench soak api-fuzz clients-check overload

## run: Redis, the provider sandbox and the gateway on http://127.0.0.1:8080 (Ctrl-C stops all)
run: deps
	@scripts/run.sh

## test: every test (unit, adapters, end to end against a real Redis and the sandbox)
test: deps
	$(CARGO) build --workspace --bins --locked
	$(CARGO) test --workspace --locked --exclude gateway-tests
	# One end-to-end test at a time: they measure rates, pauses and waits against real processes,
	# and two of them at once on a small machine disturb each other's clocks.
	$(CARGO) test -p gateway-tests --locked -- --test-threads=1
	@$(MAKE) --no-print-directory openapi-check openapi-validate

deps:
	@scripts/ensure-deps.sh

build:
	$(CARGO) build --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## openapi: regenerate openapi/openapi.json from the code
openapi:
	$(CARGO) run -q --locked -p gateway-http --bin gateway -- --print-openapi > openapi/openapi.json

## openapi-check: fail when openapi/openapi.json differs from what the code generates
openapi-check:
	@$(CARGO) run -q --locked -p gateway-http --bin gateway -- --print-openapi > target/openapi.generated.json
	@diff -u openapi/openapi.json target/openapi.generated.json \
	  || (echo "openapi/openapi.json is stale: run 'make openapi'" >&2; exit 1)
	@echo "openapi/openapi.json is up to date"

## openapi-validate: validate openapi/openapi.json against the OpenAPI 3.1 schema (installs the
## PyPI package openapi-spec-validator if missing)
openapi-validate:
	@python3 -c 'import openapi_spec_validator' 2>/dev/null \
	  || PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check 'openapi-spec-validator>=0.7,<0.10'
	@python3 -m openapi_spec_validator --schema 3.1 openapi/openapi.json

## dashboards-check: promtool checks and tests of the alerts, then every Grafana panel query against
## a real Prometheus scraping a gateway driven with traffic (installs prometheus if missing)
dashboards-check: deps
	@scripts/dashboards-check.sh

## api-fuzz: schemathesis (PyPI, pinned) against a gateway with the sandbox: every check, phases
## examples, coverage, fuzzing and stateful, a fixed seed (SEED, MAX_EXAMPLES to vary)
api-fuzz: deps
	@scripts/api-fuzz.sh

## clients-check: generates the Python (openapi-python-client) and TypeScript (openapi-typescript)
## clients with no warning, and sends every channel and type through the Python one
clients-check: deps
	@scripts/clients-check.sh

## bench: throughput and latency of the gateway against this machine's limits (not part of test);
## writes bench/results/<date>.md and .png (installs wrk and matplotlib if missing)
bench:
	@scripts/bench.sh

## soak: 30 minutes (SOAK_MINUTES) at half the full-pipeline rate with callbacks and one event
## subscription; gateway RSS and Redis memory each minute; writes bench/results/<date>-soak.md and .svg
soak:
	@scripts/soak.sh

## overload: 1,000 connections on POST /v1/messages for 10 s against a release build while the
## sandbox calls back; writes bench/results/<date>-overload.md (callbacks refused, refusal latency)
overload:
	@scripts/overload.sh

## deploy-check: parses every YAML/JSON under deploy/ and checks the compose, k8s and Dockerfile wiring
deploy-check:
	@scripts/deploy-check.sh

clean:
	rm -rf .run target
