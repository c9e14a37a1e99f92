# The menu of tasks. Each target runs one script; `make` alone lists them. The test command needs no make:
# scripts/test.sh (what .ci/run runs) is bash + cargo on a fresh machine.
SHELL := /bin/bash

.PHONY: help test build e2e stack stack-fast fuzz contract check check-alerts check-dashboards check-deploy \
	browser bench bench-vs-blackbox bench-scale bench-idle bench-micro load soak dist

help:
	@echo "make test                 everything CI runs (scripts/test.sh)"
	@echo "make check                check-alerts, check-dashboards, check-deploy"
	@echo "make e2e | browser        the end-to-end test; the status page in headless Chromium"
	@echo "make contract             the contract test (after cargo test or e2e recorded exchanges)"
	@echo "make stack | stack-fast   the e2e stack in the foreground (shipped timings | test profile)"
	@echo "make fuzz                 every cargo-fuzz target (FUZZ_SECONDS=60)"
	@echo "make bench                bench-vs-blackbox and bench-scale (docs/performance.md)"
	@echo "make bench-idle | bench-micro | load | soak   more measurements (docs/performance.md, reliability.md)"
	@echo "                          (scale, load, soak, idle: cargo bench --bench labs -- NAME, benches/labs/)"

test:
	scripts/test.sh
build:
	cargo build --release --locked
check: check-alerts check-dashboards check-deploy
check-alerts:
	scripts/check-alerts.sh
check-dashboards:
	scripts/check-dashboards.sh
check-deploy: build
	scripts/check-deploy.sh
e2e: build
	scripts/e2e.sh
browser: build
	scripts/browser-test.sh
contract: build
	scripts/contract-test.sh
stack: build
	scripts/stack.sh
stack-fast: build
	scripts/stack.sh --fast
fuzz:
	scripts/fuzz.sh

# Measurements: the shipped (dist) binary, under one measurement lock (scripts/lib/bench.py, benches/labs).
bench: bench-vs-blackbox bench-scale
bench-vs-blackbox:
	scripts/bench-vs-blackbox.sh
bench-scale:
	scripts/bench-scale.sh
dist:
	scripts/install-deps.sh bench
	cargo build --profile dist --locked --bin td-pz-exporter
bench-idle load soak: dist
	ulimit -n 65536; TD_PZ_BIN=$(CURDIR)/target/dist/td-pz-exporter cargo bench --locked --bench labs -- $(subst bench-,,$@)
bench-micro:
	python3 scripts/lib/bench.py micro
