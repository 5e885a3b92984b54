"""The login forms (the consultants' and the admin's), with brute-force protection."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from . import throttle


class ThrottledLogin:
    """
    A login form refusing for a while after too many failed attempts
    on one account or from one address. A refused attempt checks no password,
    so it tells a guesser nothing, and the right password doesn't get through
    either until the wait is over.
    """

    def clean(self):
        username = (self.data.get("username") or "").strip().lower()
        ip = throttle.client_ip(self.request) if self.request else "unknown"
        limits = [(throttle.logins_per_user(), username), (throttle.logins_per_address(), ip)]
        for limit, who in limits:
            if throttle.exceeded(limit, who):
                minutes = max(1, round(limit.seconds / 60))
                raise ValidationError(
                    f"Too many failed logins. Wait {minutes} minutes and try again.", code="throttled"
                )
        try:
            cleaned = super().clean()
        except ValidationError:
            for limit, who in limits:
                throttle.record(limit, who)
            raise
        throttle.reset(throttle.logins_per_user(), username)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLogin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLogin, AdminAuthenticationForm):
    pass
