"""Environment defaults for the test run, applied before Django reads its settings.

Loaded as a pytest plugin (``-p tests.environment`` in pytest.ini) rather than
from ``tests/conftest.py``: pytest-django imports ``gapsurvey.settings`` while
pytest is still starting, before any conftest.py is read, and the settings
refuse to load without ``SECRET_KEY`` when ``DEBUG`` is off.

``setdefault`` throughout, so a developer or CI can still point a run at
PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``) or override any value.

Why ``DEBUG=1`` for the settings module: with ``DEBUG`` off the settings turn on
``SECURE_SSL_REDIRECT`` (every test-client request would get a 301 to https)
and the manifest static storage (every page using ``{% static %}`` would fail
until ``collectstatic`` has run). Neither is what a view test is about. Django's
test runner still forces ``settings.DEBUG = False`` while tests run, so views
answer as in production (no debug pages). The production branch of the
settings is covered separately: ``tests/test_deploy_files.py`` loads them in a
subprocess with ``DEBUG=0`` and runs ``check --deploy``, and ``make
check-deploy`` runs in CI.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789abcdef")
# Submissions queue no analysis unless a test asks for it (tests that do override the setting).
os.environ.setdefault("ANALYSIS_ON_SUBMIT", "0")


def _redis_database_of_this_process() -> None:
    """
    Under pytest-xdist (``make test`` runs one process per core, up to four) each test process gets
    its own Redis database: one below the given one per process (gw0 keeps it,
    gw1 takes the next lower), so one process's worker never takes the other's
    tasks and a purge empties only its own queue. pytest-django gives each
    process its own test database the same way (``test_<name>_gw1``).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REDIS_URL", "")
    if not worker.startswith("gw") or not url:
        return
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    database = base - int(worker[2:])
    if database < 0:
        raise RuntimeError(f"REDIS_URL {url}: no Redis database left for test process {worker}; use a higher one")
    os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{database}"))


_redis_database_of_this_process()


import uuid  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _own_guessing_and_login_counts(settings):
    """Each test counts wrong links and failed logins afresh (gapsurvey/throttle.py keys by this)."""
    settings.GAPSURVEY_THROTTLE_NAMESPACE = uuid.uuid4().hex
