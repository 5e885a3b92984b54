"""
Public pages for leaders, staff and customers: no login, unguessable tokens or a
join code. Each is guarded against guessing: too many links or codes that don't
exist from one address, and it waits (gapsurvey/throttle.py).
"""

from django.urls import path, register_converter

from gapsurvey.throttle import guard_guessing

from .views import customers, staff, workshop

app_name = "public"


class PublicTokenConverter:
    """
    A link token or join code: URL-safe base64 letters (what ``new_token`` and
    join codes are made of). Anything else is no link of ours and never reaches
    a database lookup, where NUL, for one, makes PostgreSQL fail the query.
    """

    regex = "[A-Za-z0-9_-]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PublicTokenConverter, "token")

urlpatterns = [
    path("join/", guard_guessing(workshop.join), name="join"),
    path("join/<token:code>/", guard_guessing(workshop.leader_answer), name="leader_answer"),
    path("join/<token:code>/thanks/", guard_guessing(workshop.leader_thanks), name="leader_thanks"),
    path(
        "join/<token:code>/predict/<token:group>/", guard_guessing(workshop.leader_predict), name="leader_predict"
    ),
    path("staff/<token:token>/", guard_guessing(staff.staff_start), name="staff_start"),
    path("staff/<token:token>/print/", guard_guessing(staff.staff_print), name="staff_print"),
    path("sheet/<token:token>/", guard_guessing(staff.staff_sheet), name="staff_sheet"),
    path("c/<token:token>/", guard_guessing(customers.customer_answer), name="customer_answer"),
    path("c/<token:token>/done/", guard_guessing(customers.customer_done), name="customer_done"),
    path("c/<token:token>/started/", guard_guessing(customers.customer_started), name="customer_started"),
    path("c/<token:token>/unsubscribe/", guard_guessing(customers.customer_unsubscribe), name="customer_unsubscribe"),
    path("o/<token:token>/", guard_guessing(customers.open_answer), name="open_answer"),
    path("o/<token:token>/thanks/", guard_guessing(customers.open_thanks), name="open_thanks"),
]
