# Quick start: `make demo` runs a demo line; `make test` runs the whole suite.
# Both install what they need first (scripts/setup.sh).
DEMO_OUT ?= demo-out
DEMO_PORTS ?= 4
DEMO_COUNT ?= 4

.PHONY: setup build demo test bench lint clean

setup:
	@scripts/setup.sh

build: setup
	@npm run --silent build

demo: build
	@scripts/demo.sh "$(DEMO_OUT)" "$(DEMO_PORTS)" "$(DEMO_COUNT)"

test: build
	@npm test

bench: build
	@npm run --silent bench

lint: setup
	@npm run --silent lint

clean:
	rm -rf dist demo-out .test-out bench-out
