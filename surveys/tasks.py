import os
import socket

from celery import shared_task
from django.db import connection


@shared_task(name="surveys.health_ping_task")
def health_ping_task(token: str) -> dict:
    """Prove the worker wiring end to end: broker in, database reachable, result back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        database_ok = cursor.fetchone()[0] == 1
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname(), "database": database_ok}
