"""
Public pages for leaders, staff and customers: no login, unguessable tokens or a
join code. Each is guarded against guessing: too many links or codes that don't
exist from one address, and it waits (gapsurvey/throttle.py).
"""

from django.urls import path

from gapsurvey.throttle import guard_guessing

from .views import customers, staff, workshop

app_name = "public"

urlpatterns = [
    path("join/", guard_guessing(workshop.join), name="join"),
    path("join/<str:code>/", guard_guessing(workshop.leader_answer), name="leader_answer"),
    path("join/<str:code>/thanks/", guard_guessing(workshop.leader_thanks), name="leader_thanks"),
    path("staff/<str:token>/", guard_guessing(staff.staff_start), name="staff_start"),
    path("staff/<str:token>/print/", guard_guessing(staff.staff_print), name="staff_print"),
    path("sheet/<str:token>/", guard_guessing(staff.staff_sheet), name="staff_sheet"),
    path("c/<str:token>/", guard_guessing(customers.customer_answer), name="customer_answer"),
    path("c/<str:token>/done/", guard_guessing(customers.customer_done), name="customer_done"),
    path("c/<str:token>/started/", guard_guessing(customers.customer_started), name="customer_started"),
    path("c/<str:token>/unsubscribe/", guard_guessing(customers.customer_unsubscribe), name="customer_unsubscribe"),
    path("o/<str:token>/", guard_guessing(customers.open_answer), name="open_answer"),
    path("o/<str:token>/thanks/", guard_guessing(customers.open_thanks), name="open_thanks"),
]
