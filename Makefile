# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# ICAL.js (Mozilla's calendar engine, what Thunderbird uses) checks our invitations in the tests.
JS_STAMP := tests/js/node_modules/.installed

.PHONY: demo test bench mutate venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	touch $(JS_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rmdaemon.demo

test: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest -n 2

# Figures, not assertions: tick cost at 100/1,000/10,000 pairs, floor, parsing, Exchange round trips.
bench: $(STAMP)
	$(BIN)/python bench/run.py

# Mutation testing of the promise modules (docs/testing.md), one module at a time; not part of
# `make test` (tens of minutes on two cores). `make mutate PROMISES="sender purge"` runs some.
MUTATE_STAMP := $(VENV)/.mutmut-installed
$(MUTATE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,mutate]'
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP) $(JS_STAMP)
	nice -n 19 $(BIN)/python tests/mutate.py $(PROMISES)

clean:
	rm -rf var .pytest_cache
