import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gapsurvey.settings")

app = Celery("gapsurvey")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def lower_worker_priority(**kwargs) -> None:
    """Run the worker, and the pool processes it forks, at ``GAPSURVEY_WORKER_NICE`` lower CPU priority.

    The analysis keeps every core busy for seconds to minutes; at equal
    priority, web requests on the same machine wait behind it. Beat and the
    web processes never get here.
    """
    from django.conf import settings

    if settings.GAPSURVEY_WORKER_NICE:
        os.nice(settings.GAPSURVEY_WORKER_NICE)
