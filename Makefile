# The two commands: `make run` (a development server in ./var) and `make test` (everything).
# `make clean` keeps var/ (the development users, keys and mail): remove it by hand to start over.
SHELL := /bin/bash
DENO := $(shell scripts/ensure-deno)
CONFIG := var/stoken.json
# Deno trusts only its bundled roots by default; also trust the system's (a registry proxy's
# CA may live there) unless the caller chose otherwise.
DENO_TLS_CA_STORE ?= mozilla,system
export DENO_TLS_CA_STORE

.PHONY: run test check fmt clean deno binary binary-deno bench

deno:
	@test -n "$(DENO)" || { echo "make: no deno binary (scripts/ensure-deno failed)" >&2; exit 1; }

run: deno
	@test -f $(CONFIG) || $(DENO) run --allow-all mod.ts init --dir var
	$(DENO) run --allow-all mod.ts serve --config $(CONFIG)

test: deno
	@scripts/ensure-test-deps
	@DENO=$(DENO) scripts/test

check: deno
	$(DENO) check mod.ts src/ tests/
	$(DENO) lint
	$(DENO) fmt --check

fmt: deno
	$(DENO) fmt

# The single executable dist/stoken (bun build --compile; Bun from scripts/ensure-bun).
binary:
	@BUN="$$(scripts/ensure-bun)" && "$$BUN" scripts/build-binary.ts

# dist/stoken-deno with deno compile (needs its runtime download, see the script).
binary-deno: deno
	@DENO=$(DENO) scripts/build-binary-deno

# Benchmarks side by side with peers (scripts/bench; BENCH_QUICK=1 for a smoke run).
bench: deno binary
	@DENO=$(DENO) scripts/bench

clean:
	rm -rf dist/ .tools/ node_modules/
