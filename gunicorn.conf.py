"""
Gunicorn's settings for the web container (gunicorn reads ``gunicorn.conf.py``
from its working directory; the image's is this folder). Command-line options
still win over these, and ``WEB_CONCURRENCY`` / ``PORT`` over the defaults.

Workers: synchronous, two per available core plus one. Survey pages are short
requests, so a request never waits behind another in the same process; with
fewer workers, requests queue while the analysis worker on the same machine
keeps the cores busy (bench/README.md, ``bench/load``: p95 424 ms with 2
workers, 74-100 ms with 5 on 2 cores).
"""

import os


def _cores() -> int:
    """Cores this process may run on (the container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _workers() -> int:
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    return int(configured) if configured else 2 * _cores() + 1


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = _workers()
worker_class = "sync"
# A request still running after this is stuck: the worker is replaced and the request answered 502.
timeout = 60
graceful_timeout = 30
accesslog = "-"
