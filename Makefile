# weft — the project's commands. `make demo` and `make test` work on a fresh machine: they
# install what they need (Debian's wasm toolchain for guests, via scripts/guests.sh).

CARGO ?= cargo
WEFT  := target/debug/weft
export WEFT_HOME ?= $(CURDIR)/.weft

.PHONY: all guests build test lint demo bench clean

all: build

## Build every plugin under plugins/ into a wasm component (installs the toolchain if missing).
guests:
	bash scripts/guests.sh
	bash scripts/polyglot.sh

## Build the host workspace once (tests reuse it).
build:
	$(CARGO) build --workspace --all-targets

## Every test: guests, one build, lint, unit + integration tests, conformance suites, examples;
## ends with a table of each step's time.
test:
	bash scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## A demo pipeline on the embedded store (builds only what the demo runs, showing progress).
demo:
	bash scripts/demo-setup.sh
	bash scripts/demo.sh

## Benchmarks (figures only, no thresholds).
bench: guests
	bash scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf .weft
