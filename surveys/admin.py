from django.contrib import admin

from .models import (
    AnswerItem,
    Department,
    Engagement,
    Invitation,
    InvitationEmail,
    PredictedItem,
    PredictedRating,
    Prediction,
    Question,
    Rating,
    RatingItem,
    Respondent,
    Wave,
    Workspace,
    WorkshopSession,
)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]
    prepopulated_fields = {"slug": ["name"]}


class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 0


@admin.register(Engagement)
class EngagementAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "workspace", "min_individuals", "min_staff_sheets", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "slug"]
    inlines = [DepartmentInline]


class QuestionInline(admin.StackedInline):
    model = Question
    extra = 0


class RatingItemInline(admin.TabularInline):
    model = RatingItem
    extra = 0


@admin.register(Wave)
class WaveAdmin(admin.ModelAdmin):
    list_display = ["engagement", "number", "title", "status", "opens_on", "closes_on"]
    list_filter = ["status", "engagement"]
    inlines = [QuestionInline, RatingItemInline]


@admin.register(WorkshopSession)
class WorkshopSessionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "wave", "status", "opened_at", "closed_at"]
    list_filter = ["status"]


class InvitationEmailInline(admin.TabularInline):
    """What was emailed to the contact; written by the worker only, so read-only here."""

    model = InvitationEmail
    extra = 0
    can_delete = False
    fields = ["kind", "status", "attempts", "due_at", "sent_at", "error", "message_id"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "segment", "wave", "opened_at", "started_at", "completed_at", "unsubscribed_at"]
    search_fields = ["email", "name"]
    list_filter = ["wave__engagement"]
    exclude = ["token"]
    inlines = [InvitationEmailInline]


class AnswerItemInline(admin.TabularInline):
    model = AnswerItem
    extra = 0


class RatingInline(admin.TabularInline):
    model = Rating
    extra = 0


@admin.register(Respondent)
class RespondentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "wave", "group", "channel", "status", "department", "members", "submitted_at"]
    list_filter = ["group", "channel", "status", "wave__engagement"]
    search_fields = ["group_name", "department", "external_ref"]
    raw_id_fields = ["session", "invitation"]
    inlines = [AnswerItemInline, RatingInline]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "engagement"]


class PredictedRatingInline(admin.TabularInline):
    model = PredictedRating
    extra = 0


class PredictedItemInline(admin.TabularInline):
    model = PredictedItem
    extra = 0


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    """A leader's forecast of customers' or staff's answers (the workshop reveal)."""

    list_display = ["__str__", "wave", "target", "session", "updated_at"]
    list_filter = ["target", "wave__engagement"]
    raw_id_fields = ["respondent", "session"]
    inlines = [PredictedRatingInline, PredictedItemInline]
