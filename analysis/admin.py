from django.contrib import admin

from .models import AnalysisRun, Theme, ThemePin


@admin.register(AnalysisRun)
class AnalysisRunAdmin(admin.ModelAdmin):
    list_display = ["wave", "status", "trigger", "engine", "requested_at", "started_at", "finished_at", "attempts"]
    list_filter = ["status", "trigger", "engine"]
    readonly_fields = ["result", "figures", "assignments", "progress", "fingerprint", "error"]


@admin.register(Theme)
class ThemeAdmin(admin.ModelAdmin):
    list_display = ["display_label", "engagement", "label", "custom_label", "merged_into", "curated_at"]
    list_filter = ["engagement"]
    search_fields = ["label", "custom_label"]
    exclude = ["centroid"]
    raw_id_fields = ["merged_into"]


@admin.register(ThemePin)
class ThemePinAdmin(admin.ModelAdmin):
    list_display = ["item", "theme", "pinned_by", "created_at"]
    raw_id_fields = ["item", "theme"]
