from django import forms


class ThemeRenameForm(forms.Form):
    label = forms.CharField(label="Theme name", max_length=200)


class ThemeMergeForm(forms.Form):
    target = forms.TypedChoiceField(label="Merge into", coerce=int)

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "Choose a theme…")] + choices


class ItemMoveForm(forms.Form):
    item = forms.IntegerField(widget=forms.HiddenInput)
    theme = forms.TypedChoiceField(label="Move to", coerce=int)

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["theme"].choices = choices
