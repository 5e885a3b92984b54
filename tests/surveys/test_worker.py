"""End-to-end check of the production task path: Redis in, a real worker, PostgreSQL, result back.

Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set; skipped otherwise,
and a failure in CI (see the ``celery_worker_process`` fixture).
"""

import os
import uuid
from pathlib import Path

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

    def test_tasks_run_at_a_lower_cpu_priority_than_the_web(self, celery_worker_process):
        # The settings' default: an analysis must not make web requests on the same machine wait.
        payload = health_ping_task.delay(uuid.uuid4().hex).get(timeout=RESULT_TIMEOUT)

        assert _niceness(payload["pid"]) == min(os.nice(0) + 10, 19)

    def test_worker_nice_setting_reaches_the_pool_processes(self, celery_worker_factory):
        worker = celery_worker_factory(concurrency=2, GAPSURVEY_WORKER_NICE="3")

        payload = health_ping_task.delay(uuid.uuid4().hex).get(timeout=RESULT_TIMEOUT)

        assert payload["pid"] != worker.process.pid  # a prefork pool process ran it
        assert _niceness(payload["pid"]) == min(os.nice(0) + 3, 19)
        assert _niceness(worker.process.pid) == min(os.nice(0) + 3, 19)


def _niceness(pid: int) -> int:
    """A process's nice value: field 19 of /proc/<pid>/stat (the 17th after the command name)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
