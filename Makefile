# The two commands that do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
TRADES ?= 10000
RATE ?= 2000

.PHONY: demo test setup services start stop status lint unit integration bench chaos chaos-mutants clean

## demo: install what is missing, start everything, stream simulated trades, say where the UI is
demo: setup
	scripts/start.sh
	scripts/demo.sh $(TRADES) $(RATE)

## test: install what is missing, start the services the tests need, lint, run the whole suite
test: setup services lint
	scripts/run-tests.sh

setup:
	scripts/setup.sh

services:
	scripts/services.sh start

start: setup
	scripts/start.sh

stop:
	scripts/stop.sh

status:
	scripts/status.sh

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy .

## unit: the tests that need no services
unit: setup
	$(PY) -m pytest -q -m "not integration" -p no:randomly

bench: setup
	scripts/bench.sh $(if $(TRADES_BENCH),--trades $(TRADES_BENCH),)

## chaos: seeded faults during a 100,000-trade run; checks zero lost, zero duplicated
chaos: setup
	scripts/chaos.sh $(if $(SEED),--seed $(SEED),)

## chaos-mutants: each patch in scripts/chaos/mutants/ (a deliberately broken build) must make
## chaos fail, and the unpatched tree must pass the same short run
chaos-mutants: setup
	scripts/chaos-mutants.sh --control

clean: stop
	rm -rf var
