# Two set-up commands on a fresh machine with Python 3.11 + pip: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
export DAGSTER_HOME := $(CURDIR)/.dagster
export GX_ANALYTICS_ENABLED := False
export PYTHONWARNINGS := ignore::DeprecationWarning
# Packages are installed without byte-compiling every module (pip --no-compile: 103 s -> 36 s with a
# warm wheel cache); what a run imports is compiled once, on its first import, into the venv.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run test ui bench clean sweep

# The install is quiet; its log is printed only if it fails, with what to check. `make run` installs
# the package and its dependencies; `make test` adds the test extras to the same venv (pytest,
# QuantLib, quantstats, moto, playwright, the scale-out integrations): a run needs none of them.
$(STAMP): pyproject.toml
	@echo "installing into $(VENV) (log: $(VENV)/install.log) ..."
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): needs Python >= 3.11 with venv \
	(Debian: apt-get install python3-venv)"; exit 1; }
	@{ $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q --no-compile -e .; } > $(VENV)/install.log 2>&1 \
	|| { cat $(VENV)/install.log; echo "install failed (log above): needs Python >= 3.11 and pip reaching PyPI"; exit 1; }
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	@echo "installing the test extras into $(VENV) (log: $(VENV)/install-test.log) ..."
	@$(PY) -m pip install -q --no-compile -e ".[test]" > $(VENV)/install-test.log 2>&1 \
	|| { cat $(VENV)/install-test.log; echo "install failed (log above): needs pip reaching PyPI"; exit 1; }
	@touch $(TEST_STAMP)

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml.example
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml.example $(DAGSTER_HOME)/dagster.yaml

# The answer: the replay of 2007-06..2018-03 (every stress window: 2008, Aug 2011, Aug 2015, Feb 2018;
# real SPX, VX futures and equities, model chains) through every
# layer, into its own lake (data_lake/replay); RUN_ARGS / ALVH_* override (e.g. ALVH_SOURCE=synthetic).
# `make ui` opens the same lake. Tests set their own sources and lakes.
RUN_ARGS ?= --start 2007-06-01 --end 2018-03-29
run ui: export ALVH_SOURCE ?= replay
run ui: export ALVH_LAKE_URI ?= $(CURDIR)/data_lake/replay

run: install
	$(PY) -m alvh_pipeline.cli run $(RUN_ARGS)

# The answer over the assumptions that move it: the 33-configuration grid over the replay lake's books
# (runs `make run`'s pipeline first when the lake holds no books), then its robustness lines.
sweep: export ALVH_SOURCE ?= replay
sweep: export ALVH_LAKE_URI ?= $(CURDIR)/data_lake/replay
sweep: install
	@test -d $(ALVH_LAKE_URI)/books/account || $(PY) -m alvh_pipeline.cli run $(RUN_ARGS)
	$(PY) -m alvh_pipeline.cli sweep

# The suite on TEST_WORKERS processes (pytest-xdist), a test file per worker at a time: its module
# fixtures (a lake built through every layer) are built once. Most of the suite waits on servers,
# subprocesses and the disk, so two workers on two cores take ~2/3 of one's wall time.
TEST_WORKERS ?= 2
test: install $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile tests

ui: install
	$(VENV)/bin/dagster dev -w workspace.yaml

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/cointegration.py
	$(PY) bench/features.py
	$(PY) bench/books.py
	$(PY) bench/backfill.py

clean:
	rm -rf data_lake/raw data_lake/validated data_lake/quarantine data_lake/_verdicts data_lake/features data_lake/signals data_lake/books data_lake/attribution data_lake/replay $(DAGSTER_HOME)
