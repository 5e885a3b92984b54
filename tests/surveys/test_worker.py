"""End-to-end check of the production task path: Redis in, a real worker, PostgreSQL, result back.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set; skipped otherwise,
and a failure in CI (see the ``celery_worker_process`` fixture).
"""

import os
import uuid

import pytest

from surveys.tasks import health_ping_task

# Generous for one "SELECT 1" on an idle worker; a timeout means the message or
# the result got lost, not that the worker is slow.
RESULT_TIMEOUT = 30


@pytest.mark.django_db(transaction=True)
class WorkerTests:
    def test_health_ping_runs_in_the_worker_process_and_reaches_the_database(self, celery_worker_process):
        token = uuid.uuid4().hex

        result = health_ping_task.delay(token)
        payload = result.get(timeout=RESULT_TIMEOUT)

        assert payload["token"] == token
        assert payload["database"] is True
        assert payload["pid"] != os.getpid()
        # --pool=solo runs tasks in the worker's main process: the one we started.
        assert payload["pid"] == celery_worker_process.process.pid
