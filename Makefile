# spokesync — the two commands: `make demo` and `make test`.
# Only python3 (3.11+) and make are needed; everything else is installed into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SPOKESYNC_HOME ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster
SANDBOX_PORT ?= 8765

.PHONY: install demo test dev sandbox lint format bench clean system-deps screenshots

$(BIN)/spokesync: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	@touch $@

install: $(BIN)/spokesync

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pipelines.demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2 --dist loadgroup

dev: install $(DAGSTER_HOME)/dagster.yaml
	@test -d $(SPOKESYNC_HOME)/landing || $(BIN)/spokesync sample-data --out $(SPOKESYNC_HOME)/landing --days 30 --accounts 2000 --seed 7
	$(BIN)/python -m pipelines.dev

sandbox: install
	$(BIN)/spokesync sandbox --port $(SANDBOX_PORT) --db $(SPOKESYNC_HOME)/sandbox.sqlite

# Debian's chromium and postgresql for the live UI and deployment tests (root; CI runs it).
system-deps:
	bash scripts/ci-system-deps.sh

# Re-take the README's UI screenshots (docs/img/) with the headless-Chromium test.
screenshots: install
	SPOKESYNC_UI_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/pytest tests/live/test_ui_browser.py -n 0 -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(SPOKESYNC_HOME) $(DAGSTER_HOME) .pytest_cache .ruff_cache
