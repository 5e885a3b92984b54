import os
import socket

from celery import shared_task
from django.db import connection

from . import mailing


@shared_task(name="surveys.health_ping_task")
def health_ping_task(token: str) -> dict:
    """Prove the worker wiring end to end: broker in, database reachable, result back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        database_ok = cursor.fetchone()[0] == 1
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname(), "database": database_ok}


# No result kept: nothing reads it (the emails' rows say what happened), and queueing a task that
# keeps one waits on the result backend's retries while Redis is down.
@shared_task(
    name="surveys.invitation_emails_deliver_task", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def invitation_emails_deliver_task(email_ids: list[int]) -> dict:
    """
    Send one batch of invitation emails. Each email is claimed before it is
    sent, so a batch delivered twice (a retry, a redelivery after a worker
    died) sends nothing twice; ``acks_late`` is therefore safe. Emails that
    failed for a passing reason go back to the queue after their backoff.
    """
    outcome = mailing.invitation_emails_deliver(email_ids=email_ids)
    if outcome.retry:
        mailing.invitation_emails_requeue(email_ids=outcome.retry, countdown=outcome.retry_after)
    return {"sent": outcome.sent, "failed": outcome.failed, "cancelled": outcome.cancelled, "retry": len(outcome.retry)}


@shared_task(name="surveys.invitation_reminders_queue_task")
def invitation_reminders_queue_task() -> int:
    """Periodic: queue the reminders that are due."""
    return mailing.invitation_reminders_queue()


@shared_task(name="surveys.invitation_emails_sweep_task")
def invitation_emails_sweep_task() -> int:
    """Periodic: queue again the emails a dead worker or a down broker left behind."""
    return mailing.invitation_emails_sweep()
