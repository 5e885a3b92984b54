"""
Analysis results: runs computed by the workers, the themes they find, the
consultants' edits to those themes, and the embedding cache.

Themes belong to an engagement, not a wave, so a theme keeps its id from wave
to wave (trend) and from run to run (curation survives re-analysis).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from surveys.models import AnswerItem, Engagement, QuestionKey, Wave


class AnalysisRun(models.Model):
    """One computation of a wave's analysis; the latest ``done`` run is the one served."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        # Inputs identical to the served run's: nothing was recomputed.
        SKIPPED = "skipped", "Skipped (unchanged)"

    class Trigger(models.TextChoices):
        SUBMISSION = "submission", "New answers"
        MANUAL = "manual", "Recompute requested"
        COMMAND = "command", "Command line"
        CURATION = "curation", "Theme edit"

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="analysis_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.SUBMISSION)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Step reached while running, for a progress indicator: (done, total, what).
    progress = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    engine = models.CharField(max_length=60, blank=True)
    result = models.JSONField(null=True, blank=True)
    figures = models.JSONField(null=True, blank=True)
    # item id (as a string, JSON keys) -> theme id; None for unassigned items.
    assignments = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["wave", "status", "-finished_at"])]
        constraints = [
            # At most one queued run per wave: a burst of submissions shares it (debounce).
            models.UniqueConstraint(fields=["wave"], condition=Q(status="pending"), name="analysis_one_pending_run"),
        ]

    def __str__(self) -> str:
        return f"Analysis of {self.wave} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Theme(models.Model):
    """
    A topic found in the answers (across the four questions and three groups).
    The engine proposes ``label`` and ``keywords``; a consultant's ``custom_label``
    wins. A theme merged into another sends all its items there.
    """

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="themes")
    label = models.CharField(max_length=200)
    custom_label = models.CharField(max_length=200, blank=True)
    keywords = models.JSONField(default=list, blank=True)
    # L2-normalised float32 centroid of the theme's items, to recognise it in the next run.
    centroid = models.BinaryField(null=True, blank=True)
    embedder = models.CharField(max_length=60, blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    curated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["engagement", "id"]

    def __str__(self) -> str:
        return self.display_label

    @property
    def display_label(self) -> str:
        return self.custom_label or self.label


class RunThemeItems(models.Model):
    """
    The items one run put in one theme, in the order the theme page lists them
    (question, group, id), each with its group so a suppressed group can be left
    out. One row per theme: the theme page reads one short list instead of the
    run's whole item-to-theme map.
    """

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="theme_listings")
    theme = models.ForeignKey(Theme, on_delete=models.CASCADE, related_name="+")
    # [[item id, group], ...]
    items = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "theme"], name="analysis_run_theme_listing_unique")]

    def __str__(self) -> str:
        return f"Theme {self.theme_id} in run {self.run_id}"


class ThemePin(models.Model):
    """A consultant moved this item to this theme; every later run keeps it there."""

    item = models.OneToOneField(AnswerItem, on_delete=models.CASCADE, related_name="theme_pin")
    theme = models.ForeignKey(Theme, on_delete=models.CASCADE, related_name="pins")
    pinned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)


class TextEmbedding(models.Model):
    """
    Cached sentence embedding of one item text under one model: a re-run embeds
    only new or changed texts. Keyed by the text's hash, so identical texts
    (common in surveys) are embedded once.
    """

    embedder = models.CharField(max_length=60)
    text_hash = models.CharField(max_length=64)
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["embedder", "text_hash"], name="embedding_unique_text"),
        ]


class ThemeDetail(models.Model):
    """
    A consultant's choice of coarser or finer themes for one question of an
    engagement; a question without a row uses the standard detail. The next
    analysis clusters that question's items at this granularity.
    """

    class Level(models.TextChoices):
        COARSER = "coarser", "Coarser (fewer, broader themes)"
        STANDARD = "standard", "Standard"
        FINER = "finer", "Finer (more, narrower themes)"

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="theme_details")
    question_key = models.CharField(max_length=20, choices=QuestionKey.choices)
    detail = models.CharField(max_length=10, choices=Level.choices, default=Level.STANDARD)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["engagement", "question_key"], name="analysis_theme_detail_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.question_key}: {self.detail}"
