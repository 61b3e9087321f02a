# The two commands: `make run` (embedded demo) and `make test` (whole suite on PostgreSQL + Redis).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt | sha1sum | cut -c1-12)

.PHONY: run test lint venv system-deps services check-deploy bench chaos clean

$(STAMP): requirements.txt requirements-test.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-test.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

run: venv
	$(PY) scripts/run_embedded.py

# Debian packages the browser tests need (Chromium from Debian; never a browser download).
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian chromium..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# PostgreSQL and Redis, started with the machine's own commands when they are down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { echo "Starting PostgreSQL"; pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; }
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; pg_isready -h 127.0.0.1 -p 5432
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "Starting Redis"; redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log; }
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done; redis-cli -h 127.0.0.1 -p 6379 ping

# Import contracts (the layers), lint and format, types. Settings in pyproject.toml.
lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy accounts assets compliance marketplace chain config devnet api webhooks

# Whole suite: lint first, then unit, integration (real Celery worker on Redis, real
# devnet) and browser tests. pytest's exit code 5 (no tests collected) fails the run like
# any other non-zero code. TEST_PROCESSES pytest-xdist processes (a test module stays in
# one; each has its own database, broker db and cache prefix: config/settings/test.py);
# TEST_PROCESSES=0 runs in this process.
TEST_PROCESSES ?= 2
test: venv system-deps services lint
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

check-deploy: venv
	DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=$$(head -c 48 /dev/urandom | base64) \
	  DJANGO_ALLOWED_HOSTS=rwa.example DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
	  CACHE_URL=redis://127.0.0.1:6379/1 CELERY_BROKER_URL=redis://127.0.0.1:6379/0 PRIVATE_MEDIA_ROOT=/tmp/rwa-private \
	  $(PY) manage.py check --deploy --fail-level WARNING

# Fault injection under real HTTP load (not part of `make test`; ~5 min): kill -9 of the
# worker, devnet and its own redis, connection kills on its own database; then every
# accepted order is checked to be exactly one order, reservation, settlement and on-chain
# transfer. docs/chaos.md. Options: make chaos CHAOS_ARGS="--rounds 2".
chaos: venv services
	$(PY) -m bench.chaos.run $(CHAOS_ARGS)

clean:
	rm -rf var/ .pytest_cache test-artifacts/
