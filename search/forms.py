from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from .models import RelevanceJudgment
from .query_pictures import KEY
from .selectors import MODES, Filters
from .services import SearchQuery


class Form(forms.Form):
    def first_error(self) -> str:
        for field, errors in self.errors.items():
            prefix = "" if field == "__all__" else f"{field}: "
            return prefix + errors[0]
        return ""


class SearchForm(Form):
    q = forms.CharField(required=False, max_length=settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS, strip=True)
    image = forms.FileField(required=False)
    # The next pages of a picture search name the upload (search/query_pictures.py).
    picture = forms.CharField(
        required=False, max_length=64, validators=[RegexValidator(KEY, "not a picture of an earlier search; upload it again")]
    )
    like = forms.IntegerField(required=False, min_value=1)
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], required=False)
    category = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=100)
    created_from = forms.DateField(required=False)
    created_to = forms.DateField(required=False)
    collapse = forms.BooleanField(required=False)
    distant = forms.BooleanField(required=False, help_text="also show results under the relevance cut-off")
    page = forms.IntegerField(required=False, min_value=1)
    limit = forms.IntegerField(required=False, min_value=1, max_value=settings.GLIMPSE_SEARCH_MAX_LIMIT)

    def search_query(self, *, default_limit: int) -> SearchQuery:
        data = self.cleaned_data
        return SearchQuery(
            text=data.get("q") or "",
            picture=data.get("image"),
            picture_key=data.get("picture") or "",
            like=data.get("like"),
            mode=data.get("mode") or "",
            filters=search_filters(
                category=data.get("category") or "",
                tag=data.get("tag") or "",
                created_from=data.get("created_from"),
                created_to=data.get("created_to"),
            ),
            page=data.get("page") or 1,
            limit=data.get("limit") or default_limit,
            collapse=bool(data.get("collapse")),
            include_distant=bool(data.get("distant")),
        )


def search_filters(*, category: str, tag: str, created_from, created_to) -> Filters:
    """Filters as the site and the API take them: a category path, comma-separated tags."""
    return Filters(
        category=category.strip().strip("/"),
        tags=tuple(part.strip().lower() for part in tag.split(",") if part.strip()),
        created_from=created_from,
        created_to=created_to,
    )


class JudgeForm(Form):
    """One click on a result's grade button."""

    q = forms.CharField(max_length=settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS, strip=True)
    image = forms.IntegerField(min_value=1)
    grade = forms.TypedChoiceField(choices=RelevanceJudgment.Grade.choices, coerce=int)
    tag = forms.BooleanField(required=False)  # also add the query to the picture's tags
