from django import forms


class ThemeRenameForm(forms.Form):
    label = forms.CharField(label="Theme name", max_length=200)


class ThemeMergeForm(forms.Form):
    target = forms.TypedChoiceField(label="Merge into", coerce=int)

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "Choose a theme…")] + choices


class ItemIdsField(forms.Field):
    """One or more item ids, as ticked checkboxes post them."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, (list, tuple)) else [value] if value else []
        try:
            return [int(v) for v in values]
        except (TypeError, ValueError):
            raise forms.ValidationError("Items are given by number.") from None

    def validate(self, value) -> None:
        if not value:
            raise forms.ValidationError("Tick at least one item.")


class ItemMoveForm(forms.Form):
    item = ItemIdsField()
    theme = forms.TypedChoiceField(label="Move to", coerce=int)

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["theme"].choices = choices
