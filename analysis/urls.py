from django.urls import path

from . import dashboard, views

app_name = "analysis"

urlpatterns = [
    path("api/engagements/<slug:slug>/analysis", views.analysis_api, name="api_analysis"),
    path("e/<slug:slug>/w/<int:number>/analysis/recompute/", views.analysis_recompute, name="recompute"),
    path("e/<slug:slug>/w/<int:number>/dashboard/", dashboard.wave_dashboard, name="dashboard"),
    path("e/<slug:slug>/w/<int:number>/report/", dashboard.wave_report, name="report"),
    path("e/<slug:slug>/w/<int:number>/dashboard/<str:question>/", dashboard.question_dashboard, name="question_dashboard"),
    path("e/<slug:slug>/w/<int:number>/dashboard/<str:question>/detail/", views.theme_detail_set, name="theme_detail_set"),
    path("e/<slug:slug>/w/<int:number>/themes/", views.theme_list, name="theme_list"),
    path("e/<slug:slug>/w/<int:number>/themes/<int:theme_id>/", views.theme_detail, name="theme_detail"),
    path("e/<slug:slug>/w/<int:number>/themes/<int:theme_id>/rename/", views.theme_rename, name="theme_rename"),
    path("e/<slug:slug>/w/<int:number>/themes/<int:theme_id>/merge/", views.theme_merge, name="theme_merge"),
    path("e/<slug:slug>/w/<int:number>/themes/<int:theme_id>/move/", views.item_move, name="item_move"),
    path("e/<slug:slug>/w/<int:number>/export.csv", views.export_csv, name="export_csv"),
    path("e/<slug:slug>/w/<int:number>/export.xlsx", views.export_xlsx, name="export_xlsx"),
]
