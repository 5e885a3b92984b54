"""Forms of the collection side: consultant set-up and the public answer sheet."""

from __future__ import annotations

import re
import uuid

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .defaults import RATING_SCALE
from .mailing import DEFAULT_SUBJECT, PLACEHOLDERS
from .models import (
    PREDICTED_ITEMS_MAX,
    PREDICTED_QUESTIONS,
    QUESTION_TAGS,
    STAFF_MEMBERS_MAX,
    STAFF_MEMBERS_MIN,
    Engagement,
    Group,
    Question,
    RatingItem,
    Wave,
)
from .services import (
    MEAN_ROUNDING,
    Answers,
    ItemInput,
    PredictedRatingInput,
    PredictionInput,
    RatingInput,
    SheetDetails,
    decimal_text,
    mean_bounds,
)
from .validators import validate_plain_text

TAG_LABELS = {
    "good": "Good",
    "bad": "Bad",
    "neutral": "Neutral",
    "continue": "Continue",
    "start": "Start",
}

# Empty rows shown per question; a script adds more, and without it these suffice.
EXTRA_ITEM_ROWS = 3


class PlainTextMixin:
    """Every text field of the form refuses control characters (``validators.py`` says why)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                field.validators.append(validate_plain_text)


# --- Consultant set-up ----------------------------------------------------------


class EngagementCreateForm(PlainTextMixin, forms.Form):
    name = forms.CharField(label="Company name", max_length=200)
    slug = forms.SlugField(
        label="Short name (optional)",
        max_length=80,
        required=False,
        help_text="Used in links and on the command line; made from the name when left empty.",
    )


class EngagementSettingsForm(PlainTextMixin, forms.ModelForm):
    class Meta:
        model = Engagement
        fields = ["name", "min_individuals", "min_staff_sheets"]


class DepartmentForm(PlainTextMixin, forms.Form):
    name = forms.CharField(label="Department", max_length=120)


class WaveForm(PlainTextMixin, forms.ModelForm):
    class Meta:
        model = Wave
        fields = ["title", "opens_on", "closes_on", "open_link_enabled", "target_leadership", "target_staff", "target_customer"]
        widgets = {
            "opens_on": forms.DateInput(attrs={"type": "date"}),
            "closes_on": forms.DateInput(attrs={"type": "date"}),
        }
        labels = {"open_link_enabled": "Offer an open customer link"}

    def clean(self):
        cleaned = super().clean()
        opens_on, closes_on = cleaned.get("opens_on"), cleaned.get("closes_on")
        if opens_on and closes_on and closes_on < opens_on:
            self.add_error("closes_on", "The closing date is before the opening date.")
        return cleaned


class QuestionWordingForm(PlainTextMixin, forms.ModelForm):
    class Meta:
        model = Question
        fields = ["text_leadership", "text_staff", "text_customer"]
        widgets = {name: forms.Textarea(attrs={"rows": 2}) for name in fields}


class BaseQuestionWordingFormSet(forms.BaseModelFormSet):
    """
    The wave's questions as the page lists them. A post with a row that is not
    one of them (a row added, an id dropped or pointing elsewhere) was made by
    hand: refused as a whole, with a message, instead of failing on save.
    """

    def clean(self):
        super().clean()
        if any(form.instance.pk is None for form in self.forms):
            raise ValidationError("The form does not match this wave's questions: reload the page and try again.")


QuestionWordingFormSet = forms.modelformset_factory(
    Question, form=QuestionWordingForm, formset=BaseQuestionWordingFormSet, extra=0
)


class RatingItemForm(PlainTextMixin, forms.ModelForm):
    class Meta:
        model = RatingItem
        fields = ["key", "label_leadership", "label_staff", "label_customer"]
        help_texts = {"key": "A short id used in imports and exports, e.g. “speed”."}


class SessionOpenForm(PlainTextMixin, forms.Form):
    name = forms.CharField(label="Session name (optional)", max_length=200, required=False)
    predict_customers = forms.BooleanField(label="Leaders then predict the customers' view", required=False)


class ContactsForm(PlainTextMixin, forms.Form):
    """Contacts pasted as lines ``email, name, segment`` or uploaded as CSV."""

    pasted = forms.CharField(
        label="Paste contacts",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "ana@example.com, Ana Ruiz, Retail"}),
        help_text="One per line: email, name, segment (name and segment optional).",
    )
    upload = forms.FileField(
        label="…or upload a CSV file",
        required=False,
        help_text="Columns email, name, segment (a header row is expected; other columns are ignored).",
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("pasted", "").strip() and not cleaned.get("upload"):
            raise ValidationError("Paste some contacts or choose a CSV file.")
        return cleaned


_PLACEHOLDER_HELP = ", ".join("{" + name + "}" for name in PLACEHOLDERS)


class InvitationWordingForm(PlainTextMixin, forms.Form):
    """
    The customer invitation email's wording and reminder plan. Placeholders
    and the required {link} are checked by the service, which owns the rules.
    """

    invite_subject = forms.CharField(
        label="Email subject",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": DEFAULT_SUBJECT}),
        help_text=f"Leave blank for the default, “{DEFAULT_SUBJECT}”. Placeholders: {_PLACEHOLDER_HELP}.",
    )
    invite_body = forms.CharField(
        label="Email text",
        required=False,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text=(
            "Leave blank for the default text shown below. Placeholders: {company} (the company name), "
            "{name} (the contact's name; left out when unknown) and {link} (the contact's personal "
            "link, required). An unsubscribe link is always added at the end."
        ),
    )
    reminders = forms.TypedChoiceField(
        label="Reminders",
        coerce=int,
        choices=Wave._meta.get_field("reminders").choices,
        help_text=Wave._meta.get_field("reminders").help_text,
    )
    reminder_after_days = forms.IntegerField(
        label="Days before each reminder",
        min_value=1,
        max_value=60,
        help_text=Wave._meta.get_field("reminder_after_days").help_text,
    )


# --- The answer sheet -----------------------------------------------------------


class ItemForm(forms.Form):
    """One short answer item; ``tag`` exists only for tagged questions."""

    tags: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text"] = forms.CharField(
            required=False,
            max_length=settings.GAPSURVEY_ITEM_MAX_LENGTH,
            validators=[validate_plain_text],
            widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off"}),
        )
        if self.tags:
            self.fields["tag"] = forms.ChoiceField(
                required=False,
                choices=[("", "Choose…")] + [(t, TAG_LABELS[t]) for t in self.tags],
                widget=forms.Select(attrs={"class": "form-select"}),
            )

    def clean(self):
        cleaned = super().clean()
        text = (cleaned.get("text") or "").strip()
        cleaned["text"] = text
        if text and self.tags and not cleaned.get("tag"):
            self.add_error("tag", "Choose " + " or ".join(TAG_LABELS[t].lower() for t in self.tags) + ".")
        return cleaned


class BaseItemFormSet(forms.BaseFormSet):
    default_error_messages = {
        "too_many_forms": "Add at most %(num)d items to one question; combine or leave out the rest.",
    }

    def items(self, question_key: str) -> list[ItemInput]:
        return [
            ItemInput(question_key=question_key, text=form.cleaned_data["text"], tag=form.cleaned_data.get("tag", ""))
            for form in self.forms
            if form.cleaned_data.get("text")
        ]


def _item_formset(tags: tuple[str, ...]):
    form_class = type("TaggedItemForm" if tags else "PlainItemForm", (ItemForm,), {"tags": tags})
    return forms.formset_factory(
        form_class,
        formset=BaseItemFormSet,
        extra=EXTRA_ITEM_ROWS,
        max_num=settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION,
        validate_max=True,
        absolute_max=settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION,
    )


class RatingsForm(forms.Form):
    """
    One 1-5 rating per rating item. A staff sheet may instead give its
    members' spread: how many members gave each value (``spread=True``).
    """

    def __init__(self, *args, rating_items, group: str, complete: bool, spread: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.rating_items = list(rating_items)
        self.spread = spread
        self.complete = complete
        for item in self.rating_items:
            self.fields[f"rating_{item.key}"] = forms.TypedChoiceField(
                label=item.label_for(group),
                choices=[(value, f"{value} – {label}") for value, label in RATING_SCALE],
                coerce=int,
                required=False,
                widget=forms.RadioSelect,
            )
            if spread:
                for value, label in RATING_SCALE:
                    self.fields[f"spread_{item.key}_{value}"] = forms.IntegerField(
                        label=f"{value} – {label}",
                        required=False,
                        min_value=0,
                        max_value=STAFF_MEMBERS_MAX,
                        widget=forms.NumberInput(attrs={"class": "form-control form-control-sm", "inputmode": "numeric"}),
                    )

    def spread_fields(self, item) -> list:
        return [self[f"spread_{item.key}_{value}"] for value, _ in RATING_SCALE] if self.spread else []

    def rows(self) -> list[tuple]:
        """(item, agreed-value field, spread fields) per item, for the template."""
        return [(item, self[f"rating_{item.key}"], self.spread_fields(item)) for item in self.rating_items]

    def _spread(self, item) -> dict[int, int]:
        if not self.spread:
            return {}
        counts = {value: self.cleaned_data.get(f"spread_{item.key}_{value}") or 0 for value, _ in RATING_SCALE}
        return {value: n for value, n in counts.items() if n}

    def clean(self):
        cleaned = super().clean()
        for item in self.rating_items:
            name = f"rating_{item.key}"
            if self.complete and cleaned.get(name) in (None, "") and not self._spread(item) and name not in self.errors:
                self.add_error(name, "Choose a rating from 1 (poor) to 5 (excellent).")
        return cleaned

    def ratings(self) -> list[RatingInput]:
        """The ratings given; a spread gives each value the number of members who chose it."""
        result = []
        for item in self.rating_items:
            spread = self._spread(item)
            if spread:
                result.extend(RatingInput(item_key=item.key, value=v, votes=n) for v, n in sorted(spread.items()))
                continue
            value = self.cleaned_data.get(f"rating_{item.key}")
            if value not in (None, ""):
                result.append(RatingInput(item_key=item.key, value=value))
        return result


class AnswerSheet:
    """
    The four questions as item lists plus the ratings, worded for one group.
    ``complete=False`` accepts a partial sheet (a staff draft).
    """

    def __init__(self, wave: Wave, group: str, data=None, initial: Answers | None = None, complete: bool = True):
        self.wave, self.group = wave, group
        initial = initial or Answers()
        self.sections = []
        for question in wave.questions.all():
            formset_class = _item_formset(QUESTION_TAGS[question.key])
            rows = [{"text": i.text, "tag": i.tag} for i in initial.items if i.question_key == question.key]
            # Initial rows only when unbound: a bound row equal to its initial value
            # counts as "unchanged" and a formset would silently drop it.
            formset = formset_class(data, prefix=question.key, initial=None if data is not None else (rows or None))
            self.sections.append((question, question.text_for(group), formset))
        self.ratings_form = RatingsForm(
            data,
            initial=_ratings_initial(initial.ratings) if data is None else None,
            rating_items=wave.rating_items.all(),
            group=group,
            complete=complete,
            spread=group == Group.STAFF,
            prefix="r",
        )
        self.complete = complete
        self.non_field_errors: list[str] = []
        self.blank = data is None and not initial.items and not initial.ratings

    @property
    def blank_signature(self) -> tuple | None:
        """
        Everything a sheet without answers renders from, as a dictionary key:
        blank sheets of one wave and group render to the same HTML, so the page
        can reuse it (``templatetags/answer_sheets.py``). None when the sheet
        holds answers or errors.
        """
        if not self.blank:
            return None
        questions = tuple((q.key, wording, tuple(q.tags)) for q, wording, _ in self.sections)
        ratings = tuple((name, str(field.label)) for name, field in self.ratings_form.fields.items())
        return (self.group, questions, ratings)

    def is_valid(self) -> bool:
        valid = all([formset.is_valid() for _, _, formset in self.sections]) & self.ratings_form.is_valid()
        if valid and self.complete and not self.answers().items:
            self.non_field_errors.append("Add at least one item to one of the questions.")
            return False
        return valid

    def answers(self) -> Answers:
        items = [item for question, _, formset in self.sections for item in formset.items(question.key)]
        return Answers(items=items, ratings=self.ratings_form.ratings())

    def add_service_errors(self, error: ValidationError) -> None:
        self.non_field_errors.extend(error.messages)

    @property
    def has_errors(self) -> bool:
        return bool(
            self.non_field_errors
            or self.ratings_form.errors
            or any(formset.total_error_count() for _, _, formset in self.sections)
        )


def _ratings_initial(ratings: list[RatingInput]) -> dict:
    """Stored ratings back into form fields: one row with all votes is an agreed value, else a spread."""
    by_item: dict[str, list[RatingInput]] = {}
    for rating in ratings:
        by_item.setdefault(rating.item_key, []).append(rating)
    initial = {}
    for key, rows in by_item.items():
        if len(rows) == 1:
            initial[f"rating_{key}"] = rows[0].value
        else:
            initial.update({f"spread_{key}_{r.value}": r.votes for r in rows})
    return initial


def new_submission_key() -> str:
    return uuid.uuid4().hex


_SUBMISSION_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SubmissionKeyField(forms.CharField):
    """
    A key as ``new_submission_key`` makes it, or none. Anything else (a forged
    or mangled post) counts as no key: that post only loses the guard against
    storing twice, where refusing it would fail a form on a hidden field that
    nobody can see or correct.
    """

    def clean(self, value) -> str:
        value = self.to_python(value)
        return value if _SUBMISSION_KEY.fullmatch(value) else ""


class SubmissionKeyForm(forms.Form):
    """A per-render key: the same form posted twice stores one response."""

    submission_key = SubmissionKeyField(widget=forms.HiddenInput, max_length=64, required=False)


class SheetDetailsForm(PlainTextMixin, forms.Form):
    group_name = forms.CharField(label="Group name", max_length=120)
    department = forms.CharField(
        label="Department",
        max_length=120,
        help_text="Pick from the list or type your own.",
    )
    members = forms.IntegerField(
        label="Number of people in the group",
        min_value=STAFF_MEMBERS_MIN,
        max_value=STAFF_MEMBERS_MAX,
        initial=7,
        help_text=f"Groups of 6–8 work best; {STAFF_MEMBERS_MIN}–{STAFF_MEMBERS_MAX} accepted.",
    )

    def __init__(self, *args, departments: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.departments = list(departments)
        self.fields["department"].widget.attrs["list"] = "department-options"

    def details(self) -> SheetDetails:
        return SheetDetails(
            group_name=self.cleaned_data["group_name"],
            department=self.cleaned_data["department"],
            members=self.cleaned_data["members"],
        )


class SegmentForm(PlainTextMixin, forms.Form):
    segment = forms.CharField(
        label="Which best describes you? (optional)",
        max_length=120,
        required=False,
        help_text="For example the product you use or the kind of customer you are.",
    )


class JoinForm(PlainTextMixin, forms.Form):
    code = forms.CharField(
        label="Session code",
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "class": "text-uppercase"}),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split()).upper()


GROUP_LABELS = dict(Group.choices)


class ContactsEraseForm(forms.Form):
    """Erase one contact (``contact``) or, with ``everyone`` ticked, every contact of the wave."""

    contact = forms.IntegerField(required=False, widget=forms.HiddenInput)
    everyone = forms.BooleanField(required=False, label="Yes, erase every contact's details in this wave")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("everyone") and not cleaned.get("contact"):
            raise ValidationError("Choose a contact to erase, or tick the box to erase every contact.")
        return cleaned


# --- Workshop predictions ---------------------------------------------------------


class SessionPredictionsForm(forms.Form):
    predict_customers = forms.BooleanField(
        required=False,
        label="Ask leaders to predict the customers' view",
        help_text="After their own answers: the share of customers rating each item 5, the average, and what customers raise.",
    )
    predict_staff = forms.BooleanField(
        required=False,
        label="Then also the staff's view",
        help_text="A second, shorter round of the same predictions for the staff sheets.",
    )


PredictedItemFormSet = forms.formset_factory(
    type("PredictedItemForm", (ItemForm,), {"tags": ()}),
    formset=BaseItemFormSet,
    extra=3,
    max_num=PREDICTED_ITEMS_MAX,
    validate_max=True,
    absolute_max=PREDICTED_ITEMS_MAX,
)


class PredictionForm(forms.Form):
    """
    A leader's forecast of one group's answers: per rating item the percent
    giving 5 and the average, then up to five items per predicted question.
    The item lists are formsets of their own (``sections``).
    """

    def __init__(self, wave: Wave, target: str, data=None, initial_prediction=None):
        initial = {}
        rows_initial: dict[str, list[dict]] = {}
        if initial_prediction is not None and data is None:
            for rating in initial_prediction.ratings.all():
                initial[f"top_box_{rating.item.key}"] = rating.top_box_percent
                initial[f"mean_{rating.item.key}"] = rating.mean
            for item in initial_prediction.items.all():
                rows_initial.setdefault(item.question_key, []).append({"text": item.text})
        super().__init__(data, initial=initial, prefix="p")
        self.wave, self.target = wave, target
        self.rating_items = list(wave.rating_items.all())
        for item in self.rating_items:
            self.fields[f"top_box_{item.key}"] = forms.IntegerField(
                label="% giving 5",
                min_value=0,
                max_value=100,
                error_messages={"required": "Give a share from 0 to 100%."},
                widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric", "step": "1"}),
            )
            self.fields[f"mean_{item.key}"] = forms.DecimalField(
                label="Average, 1–5",
                min_value=1,
                max_value=5,
                max_digits=3,
                decimal_places=1,
                error_messages={"required": "Give an average from 1.0 to 5.0."},
                widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "decimal", "step": "0.1"}),
            )
        questions = {q.key: q for q in wave.questions.all()}
        self.sections = [
            (
                questions[key] if key in questions else None,
                key,
                PredictedItemFormSet(
                    data, prefix=f"predict_{key}", initial=None if data is not None else (rows_initial.get(key) or None)
                ),
            )
            for key in PREDICTED_QUESTIONS
        ]
        self.service_errors: list[str] = []

    def rows(self) -> list[tuple]:
        """(rating item, percent field, average field) per item, for the template."""
        return [(item, self[f"top_box_{item.key}"], self[f"mean_{item.key}"]) for item in self.rating_items]

    def clean(self):
        cleaned = super().clean()
        for item in self.rating_items:
            top_box, mean = cleaned.get(f"top_box_{item.key}"), cleaned.get(f"mean_{item.key}")
            if top_box is None or mean is None:
                continue
            low, high = mean_bounds(top_box)
            if mean < low - MEAN_ROUNDING or mean > high + MEAN_ROUNDING:
                self.add_error(
                    f"mean_{item.key}",
                    f"If {top_box}% give 5, the average is between {decimal_text(low)} and {decimal_text(high)}.",
                )
        return cleaned

    def is_valid(self) -> bool:
        return all([formset.is_valid() for _, _, formset in self.sections]) & super().is_valid()

    def prediction(self) -> PredictionInput:
        return PredictionInput(
            ratings=[
                PredictedRatingInput(
                    item_key=item.key,
                    top_box_percent=self.cleaned_data[f"top_box_{item.key}"],
                    mean=self.cleaned_data[f"mean_{item.key}"],
                )
                for item in self.rating_items
            ],
            items=[item for _, key, formset in self.sections for item in formset.items(key)],
        )

    @property
    def has_errors(self) -> bool:
        return bool(
            self.service_errors
            or (self.is_bound and self.errors)
            or any(formset.total_error_count() for _, _, formset in self.sections)
        )
