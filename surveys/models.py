"""
Collection data: who is surveyed (workspaces, engagements, waves), what they
are asked (questions, rating items) and what they answered (respondents,
answer items, ratings).

Writes go through ``surveys.services``; reads through ``surveys.selectors``.
"""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import SHA256
from django.utils import timezone

# Staff groups are meant to be 6-8 people; a sheet for 2-20 is accepted.
STAFF_MEMBERS_MIN = 2
STAFF_MEMBERS_MAX = 20

RATING_MIN = 1
RATING_MAX = 5


def new_token() -> str:
    """An unguessable public token: 32 random bytes (256 bits), URL-safe."""
    return secrets.token_urlsafe(32)


class TokenSHA256(SHA256):
    """
    SHA256 in hex, as Django's, but on PostgreSQL with the built-in sha256()
    instead of pgcrypto's digest(). Tokens are URL-safe base64, so the cast to
    bytea reads them byte for byte (it would only interpret backslashes).
    """

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="ENCODE(SHA256((%(expressions)s)::bytea), 'hex')", **extra_context)


def token_digest_of(field: str) -> models.GeneratedField:
    """
    The SHA-256 of a token column, computed by the database and indexed. Public
    links are looked up by this digest, never by the token itself, and the token
    is then compared in constant time (``surveys.selectors``): how long a lookup
    takes says nothing about how much of a guessed token was right.
    """
    return models.GeneratedField(
        expression=TokenSHA256(field),
        output_field=models.CharField(max_length=64, null=True),
        db_persist=True,
        db_index=True,  # unique already, as the token is
        editable=False,
    )


class Group(models.TextChoices):
    LEADERSHIP = "leadership", "Leadership"
    STAFF = "staff", "Staff"
    CUSTOMER = "customer", "Customers"


class QuestionKey(models.TextChoices):
    STRENGTHS = "strengths", "Strengths"
    IMPROVEMENTS = "improvements", "Improvements"
    COMPETITION = "competition", "Competition"
    CONTINUE_START = "continue_start", "Continue / start"


# Which tags each question's items carry; an empty tuple means no tag.
QUESTION_TAGS: dict[str, tuple[str, ...]] = {
    QuestionKey.STRENGTHS: (),
    QuestionKey.IMPROVEMENTS: (),
    QuestionKey.COMPETITION: ("good", "bad", "neutral"),
    QuestionKey.CONTINUE_START: ("continue", "start"),
}


class Workspace(models.Model):
    """A consultancy: its consultants see its engagements and nothing else."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="workspaces", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Engagement(models.Model):
    """One client company whose customer experience gap is measured."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="engagements")
    name = models.CharField("company name", max_length=200)
    # Globally unique: the command line interfaces address engagements by slug alone.
    slug = models.SlugField(max_length=80, unique=True)
    min_individuals = models.PositiveSmallIntegerField(
        "anonymity threshold (individuals)",
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Segments or groups with fewer leaders or customers are never shown on their own.",
    )
    min_staff_sheets = models.PositiveSmallIntegerField(
        "anonymity threshold (staff sheets)",
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Departments with fewer staff sheets are never shown on their own.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    """A staff department the consultant lists for the staff sheet's drop-down."""

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["engagement", "name"], name="department_unique_name")]

    def __str__(self) -> str:
        return self.name


class Wave(models.Model):
    """A survey round; the gap is tracked from wave to wave."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opens_on = models.DateField(null=True, blank=True)
    closes_on = models.DateField(null=True, blank=True)
    staff_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    open_link_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    staff_token_digest = token_digest_of("staff_token")
    open_link_token_digest = token_digest_of("open_link_token")
    open_link_enabled = models.BooleanField(
        default=True, help_text="An anonymous customer link for focus groups and kiosks."
    )
    # Response targets, for the progress bars: how many answers the consultant hopes for.
    target_leadership = models.PositiveIntegerField("target: leaders", null=True, blank=True)
    target_staff = models.PositiveIntegerField("target: staff sheets", null=True, blank=True)
    target_customer = models.PositiveIntegerField("target: customers", null=True, blank=True)
    # Customer invitation emails: the consultant's wording (blank: the default text) and reminders.
    invite_subject = models.CharField("email subject", max_length=200, blank=True)
    invite_body = models.TextField("email text", blank=True)
    reminders = models.PositiveSmallIntegerField(
        "reminders",
        default=1,
        choices=[(0, "No reminders"), (1, "One reminder"), (2, "Two reminders")],
        help_text="Sent only to contacts who have not answered or unsubscribed.",
    )
    reminder_after_days = models.PositiveSmallIntegerField(
        "days before each reminder",
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text="Counted from the invitation (or the previous reminder).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["engagement", "number"]
        constraints = [models.UniqueConstraint(fields=["engagement", "number"], name="wave_unique_number")]

    def __str__(self) -> str:
        return self.title or f"Wave {self.number}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class Question(models.Model):
    """One of the four fixed questions, worded per audience for this wave."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="questions")
    key = models.CharField(max_length=20, choices=QuestionKey.choices)
    order = models.PositiveSmallIntegerField(default=0)
    text_leadership = models.TextField("wording for leadership")
    text_staff = models.TextField("wording for staff")
    text_customer = models.TextField("wording for customers")

    class Meta:
        ordering = ["wave", "order"]
        constraints = [models.UniqueConstraint(fields=["wave", "key"], name="question_unique_key")]

    def __str__(self) -> str:
        return self.get_key_display()

    def text_for(self, group: str) -> str:
        return getattr(self, f"text_{group}")

    @property
    def tags(self) -> tuple[str, ...]:
        return QUESTION_TAGS[self.key]


class RatingItem(models.Model):
    """A 1-5 rating every respondent gives (1 Poor ... 5 Excellent)."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="rating_items")
    key = models.SlugField(max_length=40)
    order = models.PositiveSmallIntegerField(default=0)
    label_leadership = models.CharField("wording for leadership", max_length=300)
    label_staff = models.CharField("wording for staff", max_length=300)
    label_customer = models.CharField("wording for customers", max_length=300)

    class Meta:
        ordering = ["wave", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["wave", "key"], name="rating_item_unique_key")]

    def __str__(self) -> str:
        return self.key

    def label_for(self, group: str) -> str:
        return getattr(self, f"label_{group}")


class WorkshopSession(models.Model):
    """A leadership workshop: leaders join by a short code and answer on their phones."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="sessions")
    name = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=12, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The reveal: after answering for themselves, leaders predict what customers (and staff) said.
    predict_customers = models.BooleanField(
        "ask leaders to predict the customers' view",
        default=False,
        help_text="After their own answers, each leader predicts how customers rated and what they raised.",
    )
    predict_staff = models.BooleanField(
        "also ask them to predict the staff's view",
        default=False,
        help_text="A second prediction, of the staff sheets, after the customers'.",
    )

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return self.name or f"Session {self.code}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def predicted_groups(self) -> list[str]:
        """The groups leaders are asked to predict, in the order they are asked."""
        if not self.predict_customers:
            return []
        return [Group.CUSTOMER] + ([Group.STAFF] if self.predict_staff else [])


class Invitation(models.Model):
    """A customer's personal link: one token, one submission."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    segment = models.CharField(max_length=120, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    token_digest = token_digest_of("token")
    created_at = models.DateTimeField(auto_now_add=True)
    # The funnel: link first visited, answering begun (first input or a posted form), answers stored.
    opened_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["wave", "email"]
        constraints = [models.UniqueConstraint(fields=["wave", "email"], name="invitation_unique_email")]

    def __str__(self) -> str:
        return self.email


class InvitationEmail(models.Model):
    """
    One email to one contact: the invitation or a reminder. At most one of
    each kind per invitation (the unique constraint), and a worker claims it
    (queued -> sending) before sending, so pressing "send" twice or a task
    delivered twice never emails anyone twice.
    """

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        REMINDER_1 = "reminder_1", "First reminder"
        REMINDER_2 = "reminder_2", "Second reminder"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Not sent and never will be unless queued again: the wave closed, or the contact
        # answered or unsubscribed before its turn.
        CANCELLED = "cancelled", "Not sent"

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVITATION)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Not before this time (a retry's backoff); a queued email long past it was lost by the broker.
    due_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invitation", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["invitation", "kind"], name="invitation_email_unique_kind"),
        ]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.invitation.email}"


class Respondent(models.Model):
    """
    One answer sheet: a leader, a staff group's sheet or a customer.

    A staff sheet is one respondent carrying its group name, department and
    member count; a customer carries a segment in ``department``.
    """

    class Channel(models.TextChoices):
        WORKSHOP = "workshop", "Workshop session"
        STAFF_LINK = "staff_link", "Staff link"
        PAPER = "paper", "Paper sheet typed in"
        INVITATION = "invitation", "Invitation link"
        OPEN_LINK = "open_link", "Open link"
        IMPORT = "import", "CSV import"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="respondents")
    group = models.CharField(max_length=12, choices=Group.choices)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    # Staff department or customer segment.
    department = models.CharField(max_length=120, blank=True)
    group_name = models.CharField("staff group name", max_length=120, blank=True)
    members = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(STAFF_MEMBERS_MIN), MaxValueValidator(STAFF_MEMBERS_MAX)]
    )
    # The respondent id of an imported file, unique within its wave.
    external_ref = models.CharField(max_length=120, blank=True)
    session = models.ForeignKey(
        WorkshopSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="respondents"
    )
    invitation = models.OneToOneField(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="respondent"
    )
    # A staff draft's private link.
    edit_token = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    edit_token_digest = token_digest_of("edit_token")
    # One per rendered form: a form posted twice stores one respondent.
    submission_key = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["wave", "created_at", "id"]
        indexes = [models.Index(fields=["wave", "group", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["wave", "group", "external_ref"],
                condition=~Q(external_ref=""),
                name="respondent_unique_external_ref",
            ),
        ]

    def __str__(self) -> str:
        if self.group == Group.STAFF and self.group_name:
            return f"Staff sheet {self.group_name}"
        return f"{self.get_group_display()} #{self.pk}"


class AnswerItem(models.Model):
    """One short item (one idea) of an answer to one of the four questions."""

    respondent = models.ForeignKey(Respondent, on_delete=models.CASCADE, related_name="items")
    question_key = models.CharField(max_length=20, choices=QuestionKey.choices)
    tag = models.CharField(max_length=10, blank=True)
    text = models.TextField()
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["respondent", "question_key", "order", "id"]

    def __str__(self) -> str:
        return self.text[:60]


class Rating(models.Model):
    """
    A 1-5 rating. ``votes`` is 1 for an individual; a staff sheet gives either
    one agreed value (votes = member count) or its members' spread (one row
    per value given, votes = how many members gave it).
    """

    respondent = models.ForeignKey(Respondent, on_delete=models.CASCADE, related_name="ratings")
    item = models.ForeignKey(RatingItem, on_delete=models.CASCADE, related_name="ratings")
    value = models.PositiveSmallIntegerField(validators=[MinValueValidator(RATING_MIN), MaxValueValidator(RATING_MAX)])
    votes = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["respondent", "item", "value"]
        constraints = [
            models.UniqueConstraint(fields=["respondent", "item", "value"], name="rating_unique_value"),
            models.CheckConstraint(condition=Q(value__gte=RATING_MIN, value__lte=RATING_MAX), name="rating_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.item.key}={self.value}"


# --- Workshop predictions ------------------------------------------------------

# The open questions a leader predicts items for, and how many items each.
PREDICTED_QUESTIONS = (QuestionKey.STRENGTHS, QuestionKey.IMPROVEMENTS)
PREDICTED_ITEMS_MAX = 5


class Prediction(models.Model):
    """
    One leader's forecast of another group's answers (customers or staff):
    per rating item the share rating it 5 and the average, and the items they
    expect that group to raise. Kept apart from the leader's own answers, so it
    never enters the leadership group's analysis.
    """

    respondent = models.ForeignKey(Respondent, on_delete=models.CASCADE, related_name="predictions")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="predictions")
    session = models.ForeignKey(
        WorkshopSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    target = models.CharField("predicted group", max_length=12, choices=[(Group.CUSTOMER, "Customers"), (Group.STAFF, "Staff")])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["respondent_id", "target"]
        constraints = [
            models.UniqueConstraint(fields=["respondent", "target"], name="prediction_unique_target"),
        ]

    def __str__(self) -> str:
        return f"Prediction of {self.get_target_display().lower()} by leader #{self.respondent_id}"


class PredictedRating(models.Model):
    """A predicted rating item: percent of the group giving 5 (excellent) and the average 1-5."""

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="ratings")
    item = models.ForeignKey(RatingItem, on_delete=models.CASCADE, related_name="predicted_ratings")
    top_box_percent = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    mean = models.DecimalField(
        max_digits=3,
        decimal_places=1,
        validators=[MinValueValidator(RATING_MIN), MaxValueValidator(RATING_MAX)],
    )

    class Meta:
        ordering = ["prediction_id", "item_id"]
        constraints = [
            models.UniqueConstraint(fields=["prediction", "item"], name="predicted_rating_unique_item"),
            models.CheckConstraint(condition=Q(top_box_percent__lte=100), name="predicted_top_box_percent"),
            models.CheckConstraint(condition=Q(mean__gte=RATING_MIN, mean__lte=RATING_MAX), name="predicted_mean_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.item.key}: {self.top_box_percent}% / {self.mean}"


class PredictedItem(models.Model):
    """One item a leader expects the predicted group to raise under a question."""

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="items")
    question_key = models.CharField(max_length=20, choices=QuestionKey.choices)
    text = models.TextField()
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["prediction_id", "question_key", "order", "id"]

    def __str__(self) -> str:
        return self.text[:60]
