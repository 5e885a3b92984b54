"""Consultant pages: every one requires login and checks the workspace."""

from django.urls import path

from .views import consultant, customers, staff, workshop

app_name = "surveys"

wave = "e/<slug:slug>/w/<int:number>/"

urlpatterns = [
    path("", consultant.engagement_list, name="engagement_list"),
    path("e/new/", consultant.engagement_create, name="engagement_create"),
    path("e/<slug:slug>/", consultant.engagement_detail, name="engagement_detail"),
    path("e/<slug:slug>/settings/", consultant.engagement_settings, name="engagement_settings"),
    path("e/<slug:slug>/departments/", consultant.department_list, name="department_list"),
    path(
        "e/<slug:slug>/departments/<int:department_id>/remove/",
        consultant.department_remove,
        name="department_remove",
    ),
    path("e/<slug:slug>/waves/new/", consultant.wave_create, name="wave_create"),
    path(wave, consultant.wave_detail, name="wave_detail"),
    path(wave + "edit/", consultant.wave_edit, name="wave_edit"),
    path(wave + "close/", consultant.wave_close, name="wave_close"),
    path(wave + "open/", consultant.wave_open, name="wave_open"),
    path(wave + "questions/", consultant.question_wording, name="question_wording"),
    path(wave + "ratings/", consultant.rating_item_list, name="rating_item_list"),
    path(wave + "ratings/<int:item_id>/", consultant.rating_item_edit, name="rating_item_edit"),
    path(wave + "ratings/<int:item_id>/remove/", consultant.rating_item_remove, name="rating_item_remove"),
    path(wave + "sessions/new/", workshop.session_open, name="session_open"),
    path(wave + "sessions/<int:session_id>/", workshop.session_detail, name="session_detail"),
    path(wave + "sessions/<int:session_id>/status/", workshop.session_status, name="session_status"),
    path(wave + "sessions/<int:session_id>/close/", workshop.session_close, name="session_close"),
    path(wave + "sessions/<int:session_id>/qr.svg", workshop.session_qr, name="session_qr"),
    path(wave + "sessions/<int:session_id>/predictions/", workshop.session_predictions, name="session_predictions"),
    path(wave + "sessions/<int:session_id>/reveal/", workshop.session_reveal, name="session_reveal"),
    path(wave + "predictions/", workshop.predictions_accuracy, name="predictions_accuracy"),
    path(wave + "predictions.csv", workshop.predictions_export_csv, name="predictions_export_csv"),
    path(wave + "predictions.xlsx", workshop.predictions_export_xlsx, name="predictions_export_xlsx"),
    path(wave + "invitations/", customers.invitation_list, name="invitation_list"),
    path(wave + "invitations/email/", customers.invitation_email, name="invitation_email"),
    path(wave + "invitations/email/preview/", customers.invitation_email_html, name="invitation_email_html"),
    path(wave + "invitations/erase/", customers.contacts_erase, name="contacts_erase"),
    path(wave + "invitations/send/", customers.invitations_send, name="invitations_send"),
    path(wave + "invitations/retry/", customers.invitation_emails_retry, name="invitation_emails_retry"),
    path(wave + "sheets/", staff.sheet_list, name="sheet_list"),
    path(wave + "sheets/new/", staff.sheet_enter, name="sheet_enter"),
    path(wave + "sheets/print/", staff.sheet_print, name="sheet_print"),
]
