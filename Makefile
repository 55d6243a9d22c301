# marsha_runner — the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
## Where `make run` serves and `make runner` connects: `make run PORT=8001` (the runner
## callback domain follows unless RUNNERS_CALLBACK_DOMAIN is set).
PORT ?= 8000
HOST ?= 127.0.0.1
export PORT HOST

.PHONY: run runner test install ffmpeg migrate seed serve lint format clean

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("marsha_runner needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "ffmpeg missing: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	else \
		echo "ffmpeg is missing: install it (e.g. sudo apt-get install ffmpeg) and run again." >&2; exit 1; \
	fi

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_runner
	$(PY) manage.py seed_admin
	$(PY) manage.py seed_legacy_videos

serve:
	$(VENV)/bin/uvicorn marsha_runner.asgi:application --host $(HOST) --port $(PORT)

## The embedded default: SQLite, files under data/videos, eager tasks; serves on HOST:PORT.
run: install ffmpeg seed serve

## The dev runner (a development and test tool; production uses peertube-runner): works for
## the server of `make run` with the seeded dev runner token until Ctrl-C.
runner: install ffmpeg
	$(PY) manage.py dev_runner

## The test suite, as CI runs it: .ci/services.sh finds or starts PostgreSQL, Redis and
## SeaweedFS, and stops what it started.
test: install ffmpeg
	bash .ci/services.sh $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 .pytest-db.sqlite3 data/
