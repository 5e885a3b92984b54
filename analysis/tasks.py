"""
Analysis tasks. Each takes ids, claims its run with a conditional update and
calls a service, so a task delivered twice computes once (``acks_late`` is
safe). Failure marks the run failed; the previous finished run stays served.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from . import services

logger = logging.getLogger(__name__)

# Database hiccups (a restart, a dropped connection) are worth a retry; a bug is not.
RETRYABLE = (OperationalError, InterfaceError)


@shared_task(
    bind=True,
    name="analysis.analysis_run_task",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    # Nothing reads the result; without this, queueing subscribes to it in the Redis result
    # backend, which retries for ~20 s when Redis is down (every submission would wait that long).
    ignore_result=True,
)
def analysis_run_task(self, run_id: int) -> str:
    run = services.analysis_claim(run_id=run_id)
    if run is None:
        return "not claimed"  # finished, or another worker has it
    try:
        run = services.analysis_compute(run=run)
    except RETRYABLE as exc:
        services.analysis_release(run_id=run_id)
        if self.request.retries >= self.max_retries:
            services.analysis_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
            raise
        # Exponential backoff: 10 s, 20 s, 40 s.
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries)
    except SoftTimeLimitExceeded:
        services.analysis_fail(run_id=run_id, error="The analysis took longer than its time limit.")
        raise
    except Exception as exc:
        logger.exception("Analysis run %s failed", run_id)
        services.analysis_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    return run.status


@shared_task(name="analysis.analysis_sweep_task")
def analysis_sweep_task() -> int:
    """Periodic: re-queue runs that could not be queued (the broker was down)."""
    return services.analysis_sweep()
