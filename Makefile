# Spartacus: the two commands are `make run` (the whole local stack) and `make test`.
# Every target installs what it needs first (tools/setup.sh is idempotent).

SHELL := /bin/bash
VENV := .venv/bin
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup setup-test run test test-fast lint bench bench-gas bench-crypto bench-load bench-dapp bench-soak compile clean

setup:
	@tools/setup.sh

## The tests also drive a real browser: Debian's chromium.
setup-test:
	@tools/setup.sh --browser

## The local stack: anvil, the factory, keepers, the relay, a mail sink and the dApp.
run: setup
	@$(VENV)/python -m spartacus.stack

## Every test (unit, property, integration on a real anvil), then the static checks.
test: setup-test
	$(VENV)/ape test tests -q -p no:cacheprovider
	@$(MAKE) --no-print-directory lint

test-fast: setup
	$(VENV)/ape test tests -q -m "not slow and not anvil"

lint: setup
	@mkdir -p .cache
	$(VENV)/ruff check spartacus scripts tests bench dapp
	$(VENV)/ruff format --check spartacus scripts tests bench dapp
	$(VENV)/mypy
	SOLC_SHIM_VIA_IR=1 $(VENV)/slither contracts --solc-standard-json --solc tools/solc-shim.js \
		--filter-paths "contracts/test|node_modules" --fail-medium > .cache/slither.txt 2>&1 \
		|| { cat .cache/slither.txt; echo "slither: a medium or high finding (see above)"; exit 1; }
	@grep -E "result\(s\) found" .cache/slither.txt

compile: setup
	$(VENV)/ape compile

bench: bench-gas bench-crypto bench-load bench-dapp

## Gas per call on a real anvil (docs/BENCHMARKS.md records the figures).
bench-gas: setup
	$(VENV)/python -m bench.bench_gas $(ARGS)

## Off-chain work (sealing, keeper release, roster rebuild) at N = 1,000 and 10,000.
bench-crypto: setup
	$(VENV)/python -m bench.bench_crypto $(ARGS)

## A campaign of 10,000 pledges on anvil: fill, reveal, releases, roster.
bench-load: setup
	$(VENV)/python -m bench.bench_load $(ARGS)

## Keepers behind lying, capped and flaky nodes, SIGKILLed 100 times (ARGS="--kills 300" for more).
bench-soak: setup
	$(VENV)/python -m bench.bench_soak $(ARGS)

## The campaign page's render time with 1,000 pledges.
bench-dapp: setup-test
	$(VENV)/python -m bench.bench_dapp $(ARGS)

clean:
	rm -rf .build .cache .run artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis
