# The two first commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
STATE  ?= state
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv demo test bench clean

venv: $(STAMP)

# bjdata (pulled in by autobahn) ships only a source archive; building it in
# pip's isolated environment compiles it against NumPy 1.x, which then breaks
# at import beside NumPy 2 (which spt3g needs). Build it against our NumPy.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel "numpy>=2"
	$(PIP) install --no-build-isolation --no-cache-dir bjdata
	$(PIP) install -e ".[crossbar,test,deploy]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sisock demo --state-dir $(STATE)

# ruff and mypy first (settings in pyproject.toml): a finding stops before the slow tests.
test: $(STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print figures (see the README's performance section); not part of the tests.
bench: $(STAMP)
	$(PY) bench/http.py
	$(PY) bench/g3.py
	$(PY) bench/g3_spans.py --year
	$(PY) bench/cold.py --year
	$(PY) bench/data_nodes.py
	$(PY) bench/joined.py
	$(PY) bench/slow_readers.py
	$(PY) bench/influxql.py --year

clean:
	rm -rf $(VENV) $(STATE)
