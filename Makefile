# Uptake: `make run` starts everything, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .uptake/bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test test-fast lint db-start db-stop bench-ingest bench-analytics bench-entitlements bench-dashboard bench-sdk screenshots clean

install: $(VENV)/.installed

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit("Uptake needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	@echo "[uptake] bootstrapping uv $(UV_VERSION) into $(BOOT)…"
	@$(PYTHON) -m venv $(BOOT)
	@$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	@echo "[uptake] installing locked dependencies into $(VENV)…"
	@$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

run: install
	@$(PY) scripts/uptake_dev.py run

test: install
	@$(PY) scripts/uptake_dev.py test $(PYTEST_ARGS)

# The quick loop: everything but the headless-browser, real-Celery-worker and API fuzz tests.
test-fast: install
	@$(PY) scripts/uptake_dev.py test -m "not browser and not celery and not fuzz" $(PYTEST_ARGS)

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

db-start: install
	@$(PY) scripts/uptake_dev.py pg start

db-stop: install
	@$(PY) scripts/uptake_dev.py pg stop

# Every dashboard page and the main admin pages at 1400 px and 390 px, into .uptake/screenshots/ (demo data).
screenshots: install
	@$(PY) scripts/screenshots.py

bench-analytics: install
	@$(PY) bench/analytics/run.py $(BENCH_ARGS)

bench-entitlements: install
	@$(PY) bench/entitlements/run.py $(BENCH_ARGS)

bench-dashboard: install
	@$(PY) bench/dashboard/run.py $(BENCH_ARGS)

bench-ingest: install
	@$(PY) bench/ingest.py $(BENCH_ARGS)

bench-sdk: install
	@$(PY) bench/sdk.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BOOT) staticfiles
