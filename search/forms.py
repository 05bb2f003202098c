from django import forms
from django.conf import settings

from .models import RelevanceJudgment
from .selectors import MODES, Filters


class Form(forms.Form):
    def first_error(self) -> str:
        for field, errors in self.errors.items():
            prefix = "" if field == "__all__" else f"{field}: "
            return prefix + errors[0]
        return ""


class SearchForm(Form):
    q = forms.CharField(required=False, max_length=settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS, strip=True)
    image = forms.FileField(required=False)
    like = forms.IntegerField(required=False, min_value=1)
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], required=False)
    category = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=100)
    created_from = forms.DateField(required=False)
    created_to = forms.DateField(required=False)
    collapse = forms.BooleanField(required=False)
    distant = forms.BooleanField(required=False, help_text="also show results under the relevance cut-off")
    page = forms.IntegerField(required=False, min_value=1, max_value=100)
    limit = forms.IntegerField(required=False, min_value=1, max_value=settings.GLIMPSE_SEARCH_MAX_LIMIT)

    def clean(self):
        data = super().clean()
        if not self.errors and not (data.get("q") or data.get("image") or data.get("like")):
            raise forms.ValidationError("Type something to search for, upload a picture, or pick “more like this”.")
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            category=(data.get("category") or "").strip("/"),
            tags=tuple(tag.strip().lower() for tag in (data.get("tag") or "").split(",") if tag.strip()),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
        )


class JudgeForm(Form):
    """One click on a result's grade button."""

    q = forms.CharField(max_length=settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS, strip=True)
    image = forms.IntegerField(min_value=1)
    grade = forms.TypedChoiceField(choices=RelevanceJudgment.Grade.choices, coerce=int)
