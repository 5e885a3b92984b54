from django import forms

from surveys.validators import validate_plain_text

from .models import ThemeDetail


class ThemeRenameForm(forms.Form):
    label = forms.CharField(label="Theme name", max_length=200, validators=[validate_plain_text])


class ThemeMergeForm(forms.Form):
    target = forms.TypedChoiceField(label="Merge into", coerce=int)

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "Choose a theme…")] + choices


# Item ids are 64-bit keys: a larger number names no item, and SQLite cannot even look it up.
MAX_ITEM_ID = 2**63 - 1


class ItemIdsField(forms.Field):
    """One or more item ids, as ticked checkboxes post them."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, (list, tuple)) else [value] if value else []
        try:
            ids = [int(v) for v in values]
        except (TypeError, ValueError):
            raise forms.ValidationError("Items are given by number.") from None
        if not all(0 < item_id <= MAX_ITEM_ID for item_id in ids):
            raise forms.ValidationError("Items are given by number.")
        return ids

    def validate(self, value) -> None:
        if not value:
            raise forms.ValidationError("Tick at least one item.")


class ItemMoveForm(forms.Form):
    item = ItemIdsField()
    theme = forms.TypedChoiceField(label="Move to", coerce=int)

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["theme"].choices = choices


class ThemeDetailForm(forms.Form):
    """Coarser or finer themes for one question (``ThemeDetail.Level``)."""

    detail = forms.ChoiceField(label="Theme detail", choices=ThemeDetail.Level.choices)
