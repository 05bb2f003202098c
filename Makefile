# `make demo` and `make test` do all set-up on a fresh machine: virtualenv, install,
# embedded PostgreSQL+pgvector and Redis (started by manage.py and the test run).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
DEMO := catalog/fixtures/openclipart-demo
HOST ?= 127.0.0.1:8000

.PHONY: install demo test test-fast contract serve worker scheduler stop bench datasets clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[test]'
	@touch $@

demo: install
	$(MANAGE) migrate --noinput
	$(MANAGE) import_images $(DEMO) --manifest data.jsonl
	$(MANAGE) embed_catalog
	$(MANAGE) collectstatic --noinput --verbosity 0
	@echo "Glimpse is at http://$(HOST)/  (admin: http://$(HOST)/admin/, create a login with: $(MANAGE) createsuperuser)"
	@# The supervisor starts again whichever of the three dies (after a pause that grows while it
	@# keeps dying) and leaves the others running; Ctrl-C or a TERM stops all three.
	@GLIMPSE_SERVE_MEDIA=1 $(PY) -m config.supervisor \
		web='$(PY) -m gunicorn -c config/gunicorn.py --bind $(HOST) config.wsgi' \
		worker='$(MANAGE) embed_worker' scheduler='$(MANAGE) scheduler'

CHROMIUM := /usr/bin/chromium
CHROMIUM_LOG := .glimpse/chromium-install.log

# The browser test drives Debian's Chromium (no browser download needed); apt's output
# goes to a log, and only a failure shows it.
$(CHROMIUM):
	@mkdir -p $(dir $(CHROMIUM_LOG))
	@echo "installing Debian's chromium for the browser test (apt's output: $(CHROMIUM_LOG))"
	@{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } > $(CHROMIUM_LOG) 2>&1 \
		|| { tail -n 20 $(CHROMIUM_LOG); echo "installing chromium failed; the whole output is in $(CHROMIUM_LOG)"; exit 1; }

# ruff first (syntax, pyflakes, import order; its rules are in pyproject.toml): it takes a second.
test: install $(CHROMIUM)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# The API contract test with fresh random requests (CI replays the same 200 every run).
contract: install
	GLIMPSE_CONTRACT_EXAMPLES=3000 GLIMPSE_CONTRACT_RANDOM=1 $(PY) -m pytest tests/search/test_api_contract.py

# Development: reloads on code changes, shows tracebacks (DEBUG), serves static and media.
serve: install
	DJANGO_DEBUG=1 $(MANAGE) runserver $(HOST)

worker: install
	$(MANAGE) embed_worker

scheduler: install
	$(MANAGE) scheduler

stop: install
	$(MANAGE) services stop

bench: install
	$(PY) -m pip install --quiet --editable '.[test,bench]'
	$(PY) bench/embed_throughput.py $(DEMO)
	$(PY) bench/search_latency.py

# The evaluation sets (openclipart from Debian, emoji from npm) for evaluate_retrieval and the benches.
DATA ?= .glimpse/data
datasets: install
	$(PY) -m pip install --quiet --editable '.[test,datasets]'
	$(PY) bench/datasets.py --data $(DATA)

clean: stop
	rm -rf .glimpse
