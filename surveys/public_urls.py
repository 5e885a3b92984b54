"""Public pages for leaders, staff and customers: no login, unguessable tokens or a join code."""

from django.urls import path

from .views import customers, staff, workshop

app_name = "public"

urlpatterns = [
    path("join/", workshop.join, name="join"),
    path("join/<str:code>/", workshop.leader_answer, name="leader_answer"),
    path("join/<str:code>/thanks/", workshop.leader_thanks, name="leader_thanks"),
    path("staff/<str:token>/", staff.staff_start, name="staff_start"),
    path("staff/<str:token>/print/", staff.staff_print, name="staff_print"),
    path("sheet/<str:token>/", staff.staff_sheet, name="staff_sheet"),
    path("c/<str:token>/", customers.customer_answer, name="customer_answer"),
    path("c/<str:token>/done/", customers.customer_done, name="customer_done"),
    path("c/<str:token>/started/", customers.customer_started, name="customer_started"),
    path("c/<str:token>/unsubscribe/", customers.customer_unsubscribe, name="customer_unsubscribe"),
    path("o/<str:token>/", customers.open_answer, name="open_answer"),
    path("o/<str:token>/thanks/", customers.open_thanks, name="open_thanks"),
]
