# The two commands: `make run` (a development server in ./var) and `make test` (everything).
# `make clean` keeps var/ (the development users, keys and mail): remove it by hand to start over.
SHELL := /bin/bash
DENO := $(shell scripts/ensure-deno)
CONFIG := var/stoken.json

.PHONY: run test check fmt clean deno

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

clean:
	rm -rf dist/ .tools/ node_modules/
