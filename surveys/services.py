"""
Writes of the collection side. Every function here validates before it saves,
runs in one transaction and leaves the database as it was when it refuses.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Value, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify

from . import defaults
from .models import (
    PREDICTED_ITEMS_MAX,
    PREDICTED_QUESTIONS,
    QUESTION_TAGS,
    RATING_MAX,
    RATING_MIN,
    STAFF_MEMBERS_MAX,
    STAFF_MEMBERS_MIN,
    AnswerItem,
    Department,
    Engagement,
    Group,
    Invitation,
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
    new_token,
)

# Join codes avoid look-alike characters (0/O, 1/I/L) so they can be read off a projector.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 6


class SubmissionRefused(Exception):
    """An answer that cannot be taken; ``reason`` picks the polite page shown."""

    WAVE_CLOSED = "wave_closed"
    SESSION_CLOSED = "session_closed"
    ALREADY_ANSWERED = "already_answered"
    LINK_DISABLED = "link_disabled"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ItemInput:
    question_key: str
    text: str
    tag: str = ""


@dataclass(frozen=True)
class RatingInput:
    """
    A 1-5 rating. ``votes`` counts the people who gave ``value``; left as
    None it is one person's own rating or, on a staff sheet, the group's
    agreed value, which counts once per member.
    """

    item_key: str
    value: int
    votes: int | None = None


@dataclass
class Answers:
    """What one respondent answered: short items per question, and ratings."""

    items: list[ItemInput] = field(default_factory=list)
    ratings: list[RatingInput] = field(default_factory=list)


@dataclass(frozen=True)
class SheetDetails:
    group_name: str
    department: str
    members: int


@dataclass(frozen=True)
class Contact:
    email: str
    name: str = ""
    segment: str = ""


# --- Workspaces and engagements -------------------------------------------------


@transaction.atomic
def workspace_create(*, name: str, owner: AbstractBaseUser | None = None) -> Workspace:
    workspace = Workspace.objects.create(name=name, slug=_unique_slug(Workspace, name))
    if owner is not None:
        workspace.members.add(owner)
    return workspace


@transaction.atomic
def consultant_ensure(
    *, username: str, workspace: Workspace, email: str = "", password: str | None = None, **profile
) -> tuple[AbstractBaseUser, bool]:
    """
    The consultant login ``username``, created if new, and a member of
    ``workspace``. ``password`` (when given) is set; a new login without one
    gets an unusable password until ``changepassword``. Returns (user, created).
    """
    User = get_user_model()
    user, created = User.objects.get_or_create(
        **{User.USERNAME_FIELD: username}, defaults={"email": email, **profile}
    )
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_active = True
    user.save()
    workspace.members.add(user)
    return user, created


@transaction.atomic
def engagement_create(*, workspace: Workspace, name: str, slug: str = "") -> Engagement:
    """Create an engagement with its first wave, open and worded by default."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the company's name."})
    if slug:
        if Engagement.objects.filter(slug=slug).exists():
            raise ValidationError({"slug": f"The short name “{slug}” is taken; choose another."})
    else:
        slug = _unique_slug(Engagement, name)
    engagement = Engagement(workspace=workspace, name=name, slug=slug)
    engagement.full_clean()
    engagement.save()
    wave_create(engagement=engagement)
    return engagement


@transaction.atomic
def engagement_update(*, engagement: Engagement, name: str, min_individuals: int, min_staff_sheets: int) -> Engagement:
    engagement.name = name.strip()
    engagement.min_individuals = min_individuals
    engagement.min_staff_sheets = min_staff_sheets
    engagement.full_clean()
    engagement.save(update_fields=["name", "min_individuals", "min_staff_sheets"])
    return engagement


def _unique_slug(model, name: str) -> str:
    base = slugify(name)[:60] or "engagement"
    slug, n = base, 2
    while model.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def department_add(*, engagement: Engagement, name: str) -> Department:
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "Give the department's name."})
    if engagement.departments.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"“{name}” is already on the list."})
    return Department.objects.create(engagement=engagement, name=name)


@transaction.atomic
def department_remove(*, department: Department) -> None:
    # Sheets keep their department text; only the drop-down entry goes.
    department.delete()


# --- Waves, questions and rating items -----------------------------------------


@transaction.atomic
def wave_create(
    *,
    engagement: Engagement,
    title: str = "",
    opens_on: date | None = None,
    closes_on: date | None = None,
    number: int | None = None,
    open_link_enabled: bool = True,
    target_leadership: int | None = None,
    target_staff: int | None = None,
    target_customer: int | None = None,
) -> Wave:
    """
    Create the next wave. Its wording and rating items are copied from the
    previous wave so waves stay comparable; the first wave gets the defaults.
    """
    if opens_on and closes_on and closes_on < opens_on:
        raise ValidationError({"closes_on": "The closing date is before the opening date."})
    # Lock the engagement row so two waves created at once get distinct numbers.
    Engagement.objects.select_for_update().filter(pk=engagement.pk).first()
    previous = engagement.waves.order_by("-number").first()
    if number is None:
        number = (previous.number + 1) if previous else 1
    elif engagement.waves.filter(number=number).exists():
        raise ValidationError({"number": f"Wave {number} already exists."})
    wave = Wave.objects.create(
        engagement=engagement,
        number=number,
        title=title.strip(),
        opens_on=opens_on,
        closes_on=closes_on,
        open_link_enabled=open_link_enabled,
        target_leadership=target_leadership,
        target_staff=target_staff,
        target_customer=target_customer,
    )
    if previous is not None:
        for question in previous.questions.all():
            question.pk, question.wave = None, wave
            question.save()
        for item in previous.rating_items.all():
            item.pk, item.wave = None, wave
            item.save()
    else:
        company = engagement.name
        for order, (key, internal, customer) in enumerate(defaults.QUESTIONS):
            Question.objects.create(
                wave=wave,
                key=key,
                order=order,
                text_leadership=internal,
                text_staff=internal,
                text_customer=customer.format(company=company),
            )
        for order, (key, internal, customer) in enumerate(defaults.RATING_ITEMS):
            RatingItem.objects.create(
                wave=wave,
                key=key,
                order=order,
                label_leadership=internal,
                label_staff=internal,
                label_customer=customer.format(company=company),
            )
    return wave


@transaction.atomic
def wave_update(
    *,
    wave: Wave,
    title: str,
    opens_on: date | None,
    closes_on: date | None,
    open_link_enabled: bool,
    target_leadership: int | None = None,
    target_staff: int | None = None,
    target_customer: int | None = None,
) -> Wave:
    if opens_on and closes_on and closes_on < opens_on:
        raise ValidationError({"closes_on": "The closing date is before the opening date."})
    wave.title = title.strip()
    wave.opens_on, wave.closes_on = opens_on, closes_on
    wave.open_link_enabled = open_link_enabled
    wave.target_leadership, wave.target_staff, wave.target_customer = target_leadership, target_staff, target_customer
    wave.save(
        update_fields=[
            "title", "opens_on", "closes_on", "open_link_enabled", "target_leadership", "target_staff", "target_customer"
        ]
    )
    return wave


@transaction.atomic
def wave_close(*, wave: Wave) -> Wave:
    """Close the wave: every link then shows the polite closed page."""
    Wave.objects.filter(pk=wave.pk).update(status=Wave.Status.CLOSED, closed_at=timezone.now())
    wave.sessions.filter(status=WorkshopSession.Status.OPEN).update(
        status=WorkshopSession.Status.CLOSED, closed_at=timezone.now()
    )
    wave.refresh_from_db()
    return wave


@transaction.atomic
def wave_open(*, wave: Wave) -> Wave:
    Wave.objects.filter(pk=wave.pk).update(status=Wave.Status.OPEN, closed_at=None)
    wave.refresh_from_db()
    return wave


@transaction.atomic
def question_update(
    *, question: Question, text_leadership: str, text_staff: str, text_customer: str
) -> Question:
    question.text_leadership = text_leadership.strip()
    question.text_staff = text_staff.strip()
    question.text_customer = text_customer.strip()
    question.full_clean()
    question.save()
    return question


@transaction.atomic
def rating_item_save(
    *,
    wave: Wave,
    key: str,
    label_leadership: str,
    label_staff: str,
    label_customer: str,
    item: RatingItem | None = None,
) -> RatingItem:
    """Add a rating item, or reword an existing one (its key stays fixed once rated)."""
    key = slugify(key).replace("-", "_")
    if not key:
        raise ValidationError({"key": "Give a short key, e.g. “speed”."})
    clash = wave.rating_items.filter(key=key)
    if item is not None:
        clash = clash.exclude(pk=item.pk)
        # Compare with the stored key: a bound model form has already changed the instance.
        stored_key = RatingItem.objects.values_list("key", flat=True).get(pk=item.pk)
        if key != stored_key and item.ratings.exists():
            raise ValidationError({"key": "This item already has ratings; its key can no longer change."})
    if clash.exists():
        raise ValidationError({"key": f"There is already a rating item “{key}”."})
    if item is None:
        order = (wave.rating_items.aggregate(m=Max("order"))["m"] or 0) + 1
        item = RatingItem(wave=wave, order=order)
    item.key = key
    item.label_leadership = label_leadership.strip()
    item.label_staff = label_staff.strip()
    item.label_customer = label_customer.strip()
    item.full_clean()
    item.save()
    return item


@transaction.atomic
def rating_item_remove(*, item: RatingItem) -> None:
    if item.ratings.exists():
        raise ValidationError("This item already has ratings and cannot be removed from this wave.")
    item.delete()


# --- Workshop sessions ----------------------------------------------------------


def _new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


@transaction.atomic
def session_open(*, wave: Wave, opened_by: AbstractBaseUser | None = None, name: str = "") -> WorkshopSession:
    if not wave.is_open:
        raise ValidationError("This wave is closed; reopen it before starting a workshop session.")
    for _ in range(20):
        code = _new_join_code()
        if not WorkshopSession.objects.filter(code=code).exists():
            break
    else:  # pragma: no cover - 887 million codes; twenty collisions in a row means a bug
        raise RuntimeError("Could not find a free join code.")
    return WorkshopSession.objects.create(wave=wave, code=code, name=name.strip(), opened_by=opened_by)


@transaction.atomic
def session_close(*, session: WorkshopSession, compute_reveal: bool = False) -> WorkshopSession:
    """
    Close the session. With ``compute_reveal`` (the facilitator's button) the
    wave's analysis is queued at once, without the debounce, so the reveal is
    ready by the time the facilitator turns to the projector.
    """
    WorkshopSession.objects.filter(pk=session.pk, status=WorkshopSession.Status.OPEN).update(
        status=WorkshopSession.Status.CLOSED, closed_at=timezone.now()
    )
    session.refresh_from_db()
    if compute_reveal:
        from analysis.models import AnalysisRun
        from analysis.services import analysis_request

        analysis_request(wave=session.wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)
    return session


@transaction.atomic
def session_predictions_set(
    *, session: WorkshopSession, predict_customers: bool, predict_staff: bool
) -> WorkshopSession:
    """Switch the leaders' predictions on or off; staff can only be predicted after customers."""
    if predict_staff and not predict_customers:
        raise ValidationError("Leaders predict the staff's view after the customers'; switch on the customers' too.")
    session.predict_customers = predict_customers
    session.predict_staff = predict_staff
    session.save(update_fields=["predict_customers", "predict_staff"])
    return session


# --- Answers --------------------------------------------------------------------


def answers_validate(*, wave: Wave, answers: Answers, complete: bool = True) -> None:
    """
    Raise ValidationError unless the answers fit this wave's questions and
    rating items. ``complete`` also demands at least one item and every
    rating (a submission); a draft may lack them.
    """
    errors: list[str] = []
    max_len = settings.GAPSURVEY_ITEM_MAX_LENGTH
    per_question: dict[str, int] = {}
    for item in answers.items:
        if item.question_key not in QUESTION_TAGS:
            errors.append(f"Unknown question “{item.question_key}”.")
            continue
        text = item.text.strip()
        if not text:
            errors.append("An answer item is empty.")
        elif len(text) > max_len:
            errors.append(f"An answer item is longer than {max_len} characters; split it into shorter items.")
        tags = QUESTION_TAGS[item.question_key]
        if (item.tag or tags) and item.tag not in tags:
            errors.append(f"The tag “{item.tag}” does not fit the question “{item.question_key}”.")
        per_question[item.question_key] = per_question.get(item.question_key, 0) + 1
    for key, count in per_question.items():
        if count > settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION:
            errors.append(f"Too many items for “{key}” (at most {settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION}).")
    if complete and not answers.items:
        errors.append("Add at least one answer item.")
    # Loaded into the wave once: storing the answers reads the same rows (``_store_answers``).
    prefetch_related_objects([wave], "rating_items")
    item_keys = {item.key for item in wave.rating_items.all()}
    rated = {r.item_key for r in answers.ratings}
    for rating in answers.ratings:
        if rating.item_key not in item_keys:
            errors.append(f"Unknown rating item “{rating.item_key}”.")
        if not (RATING_MIN <= rating.value <= RATING_MAX):
            errors.append(f"A rating must be between {RATING_MIN} and {RATING_MAX}.")
        if rating.votes is not None and rating.votes < 1:
            errors.append("A rating needs at least one vote.")
    if complete and item_keys - rated:
        errors.append("Give every rating.")
    if errors:
        raise ValidationError(errors)


def _answer_rows(
    respondent: Respondent, answers: Answers, rating_items: dict[str, RatingItem]
) -> tuple[list[AnswerItem], list[Rating]]:
    """Unsaved rows for one respondent's answers: items numbered per question, one rating row per value."""
    order: dict[str, int] = {}
    items = []
    for item in answers.items:
        order[item.question_key] = order.get(item.question_key, 0) + 1
        items.append(
            AnswerItem(
                respondent=respondent,
                question_key=item.question_key,
                tag=item.tag,
                text=item.text.strip(),
                order=order[item.question_key],
            )
        )
    votes: dict[tuple[str, int], int] = {}
    for rating in answers.ratings:
        key = (rating.item_key, rating.value)
        votes[key] = votes.get(key, 0) + (rating.votes or 1)
    ratings = [
        Rating(respondent=respondent, item=rating_items[key], value=value, votes=count)
        for (key, value), count in votes.items()
    ]
    return items, ratings


def _store_answers(*, respondent: Respondent, answers: Answers, replace: bool = True) -> None:
    """Replace the respondent's items and ratings with these answers (``replace=False``: a new respondent has none)."""
    if replace:
        respondent.items.all().delete()
        respondent.ratings.all().delete()
    rating_items = {i.key: i for i in respondent.wave.rating_items.all()}
    items, ratings = _answer_rows(respondent, answers, rating_items)
    AnswerItem.objects.bulk_create(items)
    Rating.objects.bulk_create(ratings)


def _after_answers(wave_id: int) -> None:
    """Once the answers are committed, ask for a fresh analysis (debounced; never fails the submission)."""
    from analysis.services import analysis_after_submission

    transaction.on_commit(lambda: analysis_after_submission(wave_id=wave_id), robust=True)


def _ensure_wave_open(wave: Wave) -> None:
    # Read the status afresh: the wave may have closed since the form was shown.
    if not Wave.objects.filter(pk=wave.pk, status=Wave.Status.OPEN).exists():
        raise SubmissionRefused(SubmissionRefused.WAVE_CLOSED)


def _create_respondent(*, answers: Answers, submission_key: str | None, **fields) -> Respondent:
    """
    Create a submitted respondent with its answers. A repeated
    ``submission_key`` (a double click, a resent form) returns the respondent
    stored the first time instead of storing a second one.
    """
    if submission_key:
        existing = Respondent.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            respondent = Respondent.objects.create(
                status=Respondent.Status.SUBMITTED,
                submitted_at=timezone.now(),
                submission_key=submission_key or None,
                **fields,
            )
            _store_answers(respondent=respondent, answers=answers, replace=False)
    except IntegrityError:
        if submission_key:
            existing = Respondent.objects.filter(submission_key=submission_key).first()
            if existing is not None:
                return existing
        raise
    return respondent


@transaction.atomic
def leader_submit(*, session: WorkshopSession, answers: Answers, submission_key: str = "") -> Respondent:
    session = WorkshopSession.objects.select_related("wave").get(pk=session.pk)
    if not session.is_open:
        raise SubmissionRefused(SubmissionRefused.SESSION_CLOSED)
    _ensure_wave_open(session.wave)
    answers_validate(wave=session.wave, answers=answers)
    respondent = _create_respondent(
        answers=answers,
        submission_key=submission_key,
        wave=session.wave,
        group=Group.LEADERSHIP,
        channel=Respondent.Channel.WORKSHOP,
        session=session,
    )
    _after_answers(session.wave_id)
    return respondent


# --- Workshop predictions ---------------------------------------------------------


@dataclass(frozen=True)
class PredictedRatingInput:
    """A leader's forecast for one rating item: percent of the group giving 5, and the average 1-5."""

    item_key: str
    top_box_percent: int
    mean: Decimal


@dataclass
class PredictionInput:
    ratings: list[PredictedRatingInput] = field(default_factory=list)
    items: list[ItemInput] = field(default_factory=list)


# A mean is given to one decimal, so it may sit this far outside the exact bounds.
MEAN_ROUNDING = Decimal("0.05")


def decimal_text(value: Decimal) -> str:
    """2.80 as "2.8", 4.45 as "4.45": a bound as a person would write it."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def mean_bounds(top_box_percent: int) -> tuple[Decimal, Decimal]:
    """
    The averages possible when ``top_box_percent`` give 5: the rest give at
    least 1 and at most 4, so the mean lies in [1 + 4p, 4 + p].
    """
    p = Decimal(top_box_percent) / 100
    return 1 + 4 * p, 4 + p


def prediction_validate(*, wave: Wave, prediction: PredictionInput) -> None:
    errors: list[str] = []
    item_keys = list(wave.rating_items.values_list("key", flat=True))
    given = [r.item_key for r in prediction.ratings]
    for rating in prediction.ratings:
        if rating.item_key not in item_keys:
            errors.append(f"Unknown rating item “{rating.item_key}”.")
            continue
        if not 0 <= rating.top_box_percent <= 100:
            errors.append("A share of excellent ratings is between 0% and 100%.")
            continue
        if not RATING_MIN <= rating.mean <= RATING_MAX:
            errors.append(f"An average rating is between {RATING_MIN} and {RATING_MAX}.")
            continue
        low, high = mean_bounds(rating.top_box_percent)
        if rating.mean < low - MEAN_ROUNDING or rating.mean > high + MEAN_ROUNDING:
            errors.append(
                f"{rating.item_key}: if {rating.top_box_percent}% give 5, the average is between "
                f"{decimal_text(low)} and {decimal_text(high)}; change the share or the average."
            )
    if len(given) != len(set(given)):
        errors.append("Each rating item is predicted once.")
    if set(item_keys) - set(given):
        errors.append("Predict every rating item: the share giving 5 and the average.")
    # Predicted items are checked as answer items are (text, length), then for the predicted questions.
    try:
        answers_validate(wave=wave, answers=Answers(items=prediction.items), complete=False)
    except ValidationError as error:
        errors.extend(error.messages)
    per_question: dict[str, int] = {}
    for item in prediction.items:
        per_question[item.question_key] = per_question.get(item.question_key, 0) + 1
    for key, count in per_question.items():
        if key not in PREDICTED_QUESTIONS:
            errors.append(f"Items are predicted for strengths and improvements only, not “{key}”.")
        elif count > PREDICTED_ITEMS_MAX:
            errors.append(f"Predict at most {PREDICTED_ITEMS_MAX} items for “{key}”.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def prediction_submit(
    *, session: WorkshopSession, respondent: Respondent, target: str, prediction: PredictionInput
) -> Prediction:
    """
    Store (or replace) one leader's prediction of ``target``'s answers. The
    leader must have answered for themselves in this session first; a second
    submission replaces the first, so a leader may correct their forecast
    while the session is open.
    """
    session = WorkshopSession.objects.select_related("wave").select_for_update().get(pk=session.pk)
    if not session.is_open:
        raise SubmissionRefused(SubmissionRefused.SESSION_CLOSED)
    _ensure_wave_open(session.wave)
    if target not in session.predicted_groups:
        raise ValidationError("This session does not ask for that prediction.")
    if not (
        respondent.session_id == session.pk
        and respondent.group == Group.LEADERSHIP
        and respondent.status == Respondent.Status.SUBMITTED
    ):
        raise ValidationError("Answer for yourself first, then predict.")
    prediction_validate(wave=session.wave, prediction=prediction)
    stored, _ = Prediction.objects.update_or_create(
        respondent=respondent, target=target, defaults={"wave": session.wave, "session": session}
    )
    stored.ratings.all().delete()
    stored.items.all().delete()
    rating_items = {i.key: i for i in session.wave.rating_items.all()}
    PredictedRating.objects.bulk_create(
        PredictedRating(prediction=stored, item=rating_items[r.item_key], top_box_percent=r.top_box_percent, mean=r.mean)
        for r in prediction.ratings
    )
    order: dict[str, int] = {}
    rows = []
    for item in prediction.items:
        order[item.question_key] = order.get(item.question_key, 0) + 1
        rows.append(
            PredictedItem(prediction=stored, question_key=item.question_key, text=item.text.strip(), order=order[item.question_key])
        )
    PredictedItem.objects.bulk_create(rows)
    _after_answers(session.wave_id)
    return stored


def _sheet_answers(details: SheetDetails, answers: Answers) -> Answers:
    """
    A staff sheet's ratings weigh people, not sheets: the group's agreed value
    (votes left as None) counts once per member; a spread gives its own counts,
    which must account for every member (checked by _validate_sheet_ratings).
    """
    ratings = [
        RatingInput(item_key=r.item_key, value=r.value, votes=details.members) if r.votes is None else r
        for r in answers.ratings
    ]
    return Answers(items=answers.items, ratings=ratings)


def _validate_sheet_ratings(details: SheetDetails, answers: Answers) -> None:
    totals: dict[str, int] = {}
    for rating in answers.ratings:
        totals[rating.item_key] = totals.get(rating.item_key, 0) + (rating.votes or 1)
    errors = [
        f"The ratings for “{key}” count {total} people, but the group has {details.members}."
        for key, total in totals.items()
        if total != details.members
    ]
    if errors:
        raise ValidationError(errors)


def _validate_sheet_details(details: SheetDetails) -> None:
    errors = {}
    if not details.group_name.strip():
        errors["group_name"] = "Give the group a name, e.g. “Team Blue”."
    if not details.department.strip():
        errors["department"] = "Choose or type the group's department."
    if not (STAFF_MEMBERS_MIN <= details.members <= STAFF_MEMBERS_MAX):
        errors["members"] = f"A group has between {STAFF_MEMBERS_MIN} and {STAFF_MEMBERS_MAX} members."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def staff_sheet_save(
    *,
    wave: Wave,
    details: SheetDetails,
    answers: Answers,
    submit: bool,
    sheet: Respondent | None = None,
    channel: str = Respondent.Channel.STAFF_LINK,
    submission_key: str = "",
) -> Respondent:
    """
    Save a staff group's sheet as a draft (reopened from its private link) or
    submit it. A draft may be incomplete; a submission is validated in full.
    A submitted sheet is final.
    """
    _ensure_wave_open(wave)
    _validate_sheet_details(details)
    answers = _sheet_answers(details, answers)
    answers_validate(wave=wave, answers=answers, complete=submit)
    _validate_sheet_ratings(details, answers)
    fields = {
        "group_name": details.group_name.strip(),
        "department": " ".join(details.department.split()),
        "members": details.members,
    }
    if sheet is None and submission_key:
        # "Save draft" clicked twice on a new sheet: update the draft the first click made.
        sheet = Respondent.objects.filter(submission_key=submission_key, group=Group.STAFF, wave=wave).first()
    if sheet is None:
        if submit:
            _after_answers(wave.pk)
            return _create_respondent(
                answers=answers, submission_key=submission_key, wave=wave, group=Group.STAFF, channel=channel, **fields
            )
        sheet = Respondent.objects.create(
            wave=wave,
            group=Group.STAFF,
            channel=channel,
            status=Respondent.Status.DRAFT,
            edit_token=new_token(),
            submission_key=submission_key or None,
            **fields,
        )
    else:
        sheet = Respondent.objects.select_for_update().get(pk=sheet.pk)
        if sheet.status == Respondent.Status.SUBMITTED:
            if submission_key and sheet.submission_key == submission_key:
                return sheet  # the same form posted again: already stored
            raise SubmissionRefused(SubmissionRefused.ALREADY_ANSWERED)
        for name, value in fields.items():
            setattr(sheet, name, value)
        if submit:
            sheet.status = Respondent.Status.SUBMITTED
            sheet.submitted_at = timezone.now()
            # Remember the submitting form, so posting it twice is answered as a success.
            sheet.submission_key = submission_key or sheet.submission_key
        sheet.save()
    _store_answers(respondent=sheet, answers=answers)
    if submit:
        _after_answers(wave.pk)
    return sheet


# --- Customers ------------------------------------------------------------------


@transaction.atomic
def invitations_create(*, wave: Wave, contacts: list[Contact]) -> tuple[int, int]:
    """
    Create one invitation link per new email address. Duplicates (in the list
    or already invited to this wave) are merged, keeping the first. Returns
    (created, merged).
    """
    existing = {e.lower() for e in wave.invitations.values_list("email", flat=True)}
    created: list[Invitation] = []
    merged = 0
    for contact in contacts:
        email = contact.email.strip().lower()
        if email in existing:
            merged += 1
            continue
        existing.add(email)
        invitation = Invitation(wave=wave, email=email, name=contact.name.strip(), segment=contact.segment.strip())
        invitation.full_clean(exclude=["wave", "token"])
        created.append(invitation)
    Invitation.objects.bulk_create(created)
    return len(created), merged


@transaction.atomic
def contacts_erase(*, wave: Wave, invitation_ids: list[int] | None = None) -> int:
    """
    Erase contacts' personal data on request: their email address, name and
    every email sent to them go; answers they gave stay, anonymous, with their
    segment. ``invitation_ids`` None erases every contact of the wave. Returns
    how many were erased.
    """
    invitations = wave.invitations.all()
    if invitation_ids is not None:
        invitations = invitations.filter(pk__in=invitation_ids)
    # Respondent.invitation is SET_NULL and InvitationEmail cascades: one delete does it.
    _total, by_model = invitations.delete()
    return by_model.get(Invitation._meta.label, 0)


def invitation_mark_opened(*, invitation: Invitation) -> None:
    # Conditional update: only the first visit is recorded, without a read-modify-write race.
    Invitation.objects.filter(pk=invitation.pk, opened_at__isnull=True).update(opened_at=timezone.now())


@transaction.atomic
def invitation_submit(*, invitation: Invitation, answers: Answers) -> Respondent:
    """Store a customer's answers; one invitation takes exactly one submission."""
    invitation = Invitation.objects.select_for_update().select_related("wave").get(pk=invitation.pk)
    if Respondent.objects.filter(invitation=invitation).exists():
        raise SubmissionRefused(SubmissionRefused.ALREADY_ANSWERED)
    _ensure_wave_open(invitation.wave)
    answers_validate(wave=invitation.wave, answers=answers)
    try:
        respondent = _create_respondent(
            answers=answers,
            submission_key=None,
            wave=invitation.wave,
            group=Group.CUSTOMER,
            channel=Respondent.Channel.INVITATION,
            department=invitation.segment,
            invitation=invitation,
        )
    except IntegrityError:
        # Another request for the same invitation won the race.
        raise SubmissionRefused(SubmissionRefused.ALREADY_ANSWERED)
    _after_answers(invitation.wave_id)
    now = Value(timezone.now())
    # Answers that arrive complete (a form posted without a first visit seen) still pass every funnel step.
    Invitation.objects.filter(pk=invitation.pk).update(
        completed_at=now, opened_at=Coalesce("opened_at", now), started_at=Coalesce("started_at", now)
    )
    return respondent


@transaction.atomic
def open_link_submit(*, wave: Wave, answers: Answers, segment: str = "", submission_key: str = "") -> Respondent:
    wave = Wave.objects.get(pk=wave.pk)
    if not wave.open_link_enabled:
        raise SubmissionRefused(SubmissionRefused.LINK_DISABLED)
    _ensure_wave_open(wave)
    answers_validate(wave=wave, answers=answers)
    respondent = _create_respondent(
        answers=answers,
        submission_key=submission_key,
        wave=wave,
        group=Group.CUSTOMER,
        channel=Respondent.Channel.OPEN_LINK,
        department=" ".join(segment.split())[:120],
    )
    _after_answers(wave.pk)
    return respondent


# --- CSV import -----------------------------------------------------------------
#
# ``surveys.importing`` reads and checks a file into ImportedRespondent values
# (no database); the services below find or create the target wave and store
# the answers. The import_responses command runs the three steps in one
# transaction, so a file with errors leaves no engagement, wave or respondent.

# Rows per INSERT: imports run to tens of thousands of items.
IMPORT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class LineError:
    """A problem in an imported file, at the line a person sees in an editor (header = 1)."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ImportRejected(Exception):
    """A file that cannot be imported; ``errors`` lists every problem found, in file order."""

    def __init__(self, errors: list[LineError]):
        super().__init__(f"{len(errors)} problem(s) in the file; nothing was imported.")
        self.errors = errors


@dataclass
class ImportedRespondent:
    """One respondent of an imported file: all rows sharing a group and respondent id."""

    group: str
    ref: str
    # The line of its first row, to point at when the whole respondent is refused.
    line: int
    department: str = ""
    members: int | None = None
    items: list[ItemInput] = field(default_factory=list)
    ratings: list[RatingInput] = field(default_factory=list)


@dataclass(frozen=True)
class ImportSummary:
    wave: Wave
    respondents: dict[str, int]  # group -> respondents created
    items: int
    ratings: int

    @property
    def total(self) -> int:
        return sum(self.respondents.values())


@transaction.atomic
def import_target_resolve(*, slug: str, wave_number: int | None = None, create_as: str = "") -> Wave:
    """
    The wave an import goes into. An unknown slug raises Engagement.DoesNotExist
    unless ``create_as`` names the company, which then becomes a new engagement
    in the first workspace (one is created if there is none). ``wave_number``
    picks that wave, creating it if missing; without it the latest wave is used.
    """
    engagement = Engagement.objects.filter(slug=slug).first()
    if engagement is None:
        if not create_as.strip():
            raise Engagement.DoesNotExist(f"There is no engagement “{slug}”.")
        workspace = Workspace.objects.order_by("pk").first() or workspace_create(name="Default workspace")
        engagement = engagement_create(workspace=workspace, name=create_as, slug=slug)
    if wave_number is None:
        wave = engagement.waves.order_by("-number").first()
        return wave or wave_create(engagement=engagement)
    if wave_number < 1:
        raise ValidationError({"number": "Wave numbers start at 1."})
    wave = engagement.waves.filter(number=wave_number).first()
    return wave or wave_create(engagement=engagement, number=wave_number)


@transaction.atomic
def responses_import(*, wave: Wave, respondents: list[ImportedRespondent]) -> ImportSummary:
    """
    Store checked respondents as submitted answers of ``wave``, all or none.
    A respondent id already in this wave and group (an earlier import of the
    same file) refuses the whole import.
    """
    # Lock the wave so two imports of the same file cannot both pass the check below.
    wave = Wave.objects.select_for_update().select_related("engagement").get(pk=wave.pk)
    rating_items = {item.key: item for item in wave.rating_items.all()}
    taken = set(wave.respondents.exclude(external_ref="").values_list("group", "external_ref"))
    in_file: set[tuple[str, str]] = set()
    errors: list[LineError] = []
    for imported in respondents:
        key = (imported.group, imported.ref)
        if imported.group not in Group.values:
            errors.append(LineError(imported.line, f"unknown group “{imported.group}”"))
        elif key in taken:
            errors.append(
                LineError(
                    imported.line,
                    f"{imported.group} respondent “{imported.ref}” is already in {wave.engagement} wave "
                    f"{wave.number} (was this file imported before?)",
                )
            )
        elif key in in_file:
            errors.append(LineError(imported.line, f"{imported.group} respondent “{imported.ref}” is given twice"))
        if imported.group == Group.STAFF and imported.members is None:
            errors.append(LineError(imported.line, f"staff sheet “{imported.ref}” has no member count"))
        in_file.add(key)
        for rating in imported.ratings:
            if rating.item_key not in rating_items:
                errors.append(LineError(imported.line, f"unknown rating item “{rating.item_key}”"))
    if errors:
        raise ImportRejected(errors)

    now = timezone.now()
    rows = [
        Respondent(
            wave=wave,
            group=imported.group,
            channel=Respondent.Channel.IMPORT,
            status=Respondent.Status.SUBMITTED,
            submitted_at=now,
            external_ref=imported.ref,
            group_name=imported.ref if imported.group == Group.STAFF else "",
            department=imported.department,
            members=imported.members,
        )
        for imported in respondents
    ]
    # PostgreSQL and SQLite 3.35+ hand back the new ids, which the items below need.
    Respondent.objects.bulk_create(rows, batch_size=IMPORT_BATCH_SIZE)

    item_rows: list[AnswerItem] = []
    rating_rows: list[Rating] = []
    for respondent, imported in zip(rows, respondents):
        ratings = imported.ratings
        if imported.group == Group.STAFF:
            # Weigh a sheet's agreed value by its members, as a sheet typed in on the site is.
            details = SheetDetails(group_name=imported.ref, department=imported.department, members=imported.members)
            ratings = _sheet_answers(details, Answers(ratings=ratings)).ratings
        items, ratings = _answer_rows(respondent, Answers(items=imported.items, ratings=ratings), rating_items)
        item_rows.extend(items)
        rating_rows.extend(ratings)
    AnswerItem.objects.bulk_create(item_rows, batch_size=IMPORT_BATCH_SIZE)
    Rating.objects.bulk_create(rating_rows, batch_size=IMPORT_BATCH_SIZE)
    _after_answers(wave.pk)

    per_group = {group: 0 for group in Group.values}
    for imported in respondents:
        per_group[imported.group] += 1
    return ImportSummary(wave=wave, respondents=per_group, items=len(item_rows), ratings=len(rating_rows))
