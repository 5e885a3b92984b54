# GapSurvey developer commands. `make run` and `make test` work on a fresh clone:
# they create .venv and install the pinned requirements on first use, and again
# only when a requirements file changes.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# One test process per core (pytest-xdist; a class's tests stay in one process).
PYTEST_ARGS ?= -n auto --maxprocesses 4 --dist loadscope

# Security settings an operator may relax in their shell; check-deploy unsets
# them so it always checks the shipped production defaults.
DEPLOY_OVERRIDES := SECURE_SSL_REDIRECT SECURE_HSTS_SECONDS SECURE_HSTS_INCLUDE_SUBDOMAINS SECURE_HSTS_PRELOAD

.PHONY: run test check-deploy clean distclean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when the requirements they depend on change.
$(VENV)/.installed-run: requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -r requirements-test.txt
	touch $@

# Development server on the embedded defaults (SQLite, tasks run in-process)
# unless DATABASE_URL / REDIS_URL are set. DEBUG=1: the settings refuse to start
# without a SECRET_KEY when DEBUG is off.
run: export DEBUG = 1
run: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --url http://$(HOST):$(PORT)/
	$(PY) manage.py analyze northwind-fibre
	@echo
	@echo "GapSurvey is at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo
	$(PY) manage.py runserver $(HOST):$(PORT)

# SQLite and eager tasks by default; PostgreSQL, Redis and a real Celery worker
# for the integration tests when DATABASE_URL and REDIS_URL are set.
test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS)

# Django's deployment checklist against the production settings (DEBUG off),
# after collecting static files as the image build does (with DEBUG off, static
# URLs come from the collected manifest); any warning fails.
check-deploy: export DEBUG = 0
check-deploy: export ALLOWED_HOSTS = example.com
check-deploy: $(VENV)/.installed-run
	env $(addprefix -u ,$(DEPLOY_OVERRIDES)) \
		SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
		sh -c '$(PY) manage.py collectstatic --noinput --clear -v 0 \
			&& $(PY) manage.py check --deploy --fail-level WARNING'

# Generated files: caches, collected static files and the development database.
clean:
	rm -rf var staticfiles test-output .pytest_cache .hypothesis .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Everything clean removes, and the virtualenv.
distclean: clean
	rm -rf $(VENV)
