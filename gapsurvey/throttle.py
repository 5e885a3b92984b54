"""
Limits on guessing: wrong public links and workshop codes, and failed logins.

Counts live in Django's cache (Redis in production, so every web process
shares them) in fixed windows. Only failures count: a customer who follows
their own link, or a consultant who types the password right, never meets a
limit, however busy the survey.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import render

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    scope: str
    count: int
    seconds: int


def guesses() -> Limit:
    """Wrong personal links, staff links, open links and workshop codes from one address."""
    return Limit("guess", settings.GAPSURVEY_GUESS_LIMIT, settings.GAPSURVEY_GUESS_WINDOW_SECONDS)


def logins_per_user() -> Limit:
    return Limit("login-user", settings.GAPSURVEY_LOGIN_LIMIT, settings.GAPSURVEY_LOGIN_WINDOW_SECONDS)


def logins_per_address() -> Limit:
    # Several consultants may share an office address: a looser limit than per account.
    return Limit("login-ip", settings.GAPSURVEY_LOGIN_LIMIT * 4, settings.GAPSURVEY_LOGIN_WINDOW_SECONDS)


def client_ip(request) -> str:
    """The client's address: the socket's, or behind a trusted proxy the one it reports."""
    if settings.USE_X_FORWARDED_FOR:
        # The proxy appends the address it saw; earlier entries came from the client and can lie.
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(limit: Limit, who: str) -> str:
    window = int(time.time() // limit.seconds)
    digest = hashlib.sha256(who.encode()).hexdigest()[:32]
    return f"throttle:{settings.GAPSURVEY_THROTTLE_NAMESPACE}:{limit.scope}:{digest}:{window}"


# With the cache (Redis) down the limits are not enforced rather than every public page and
# login failing: a customer's answer matters more than a count of wrong links.


def exceeded(limit: Limit, who: str) -> bool:
    try:
        return (cache.get(_key(limit, who)) or 0) >= limit.count
    except Exception:
        logger.warning("Could not read the %s limit; not enforced.", limit.scope, exc_info=True)
        return False


def record(limit: Limit, who: str) -> None:
    key = _key(limit, who)
    try:
        cache.add(key, 0, timeout=limit.seconds)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=limit.seconds)
    except Exception:
        logger.warning("Could not count a %s failure.", limit.scope, exc_info=True)


def reset(limit: Limit, who: str) -> None:
    try:
        cache.delete(_key(limit, who))
    except Exception:
        logger.warning("Could not reset the %s count.", limit.scope, exc_info=True)


def too_many(request, limit: Limit):
    minutes = max(1, round(limit.seconds / 60))
    response = render(request, "public/too_many.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(limit.seconds)
    return response


def guard_guessing(view):
    """
    For a view addressed by an unguessable token or a workshop code: after too
    many addresses that don't exist (404s) from one client, answer 429 for a
    while instead of looking further.
    """

    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        limit, ip = guesses(), client_ip(request)
        if exceeded(limit, ip):
            return too_many(request, limit)
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            record(limit, ip)
            raise
        if response.status_code == 404:
            record(limit, ip)
        return response

    return guarded
