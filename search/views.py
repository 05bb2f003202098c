from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from catalog.models import Image
from embeddings.exceptions import NoActiveVersion

from .exceptions import InvalidJudgment, InvalidQuery, JudgmentNotAllowed, QueryImageNotFound
from .judgments import PERMISSION, current_grades, judgment_record
from .forms import JudgeForm, SearchForm
from .services import search_run

PAGE_SIZE = 24


@require_http_methods(["GET", "HEAD", "POST"])
def search_page(request):
    submitted = bool(request.GET or request.FILES)
    form = SearchForm(request.GET if submitted else None, request.FILES or None)
    context = {"form": form, "results": None, "error": "", "categories": categories()}
    status = 400
    if submitted:
        if form.is_valid():
            try:
                context["results"] = search_run(query=form.search_query(default_limit=PAGE_SIZE))
            except (InvalidQuery, NoActiveVersion) as error:
                context["error"] = str(error)
            except QueryImageNotFound as error:
                context["error"], status = str(error), 404
        else:
            context["error"] = form.first_error()
        if form.is_valid() and context["results"]:
            results = context["results"]
            page = form.cleaned_data.get("page") or 1
            context["page"] = page
            context["has_next"] = results.has_next
            context["query_string"] = request.GET.copy()
            context["query_string"].pop("page", None)
            query = form.cleaned_data.get("q") or ""
            if query and not request.FILES and request.user.has_perm(PERMISSION):
                context["can_judge"] = True
                grades = current_grades(curator=request.user, query_text=query, image_ids=results.image_ids)
                context["grades"] = grades
                for hit in results.hits:
                    hit.image.my_grade = grades.get(hit.image.id)
    return render(request, "search/page.html", context, status=status if context["error"] else 200)


def categories() -> list[str]:
    """Every category and each of its parents ("animals" for "animals/housecats")."""
    paths = Image.objects.exclude(category="").values_list("category", flat=True).distinct()
    return sorted({"/".join(parts[:depth]) for parts in (path.split("/") for path in paths) for depth in range(1, len(parts) + 1)})


def image_detail(request, image_id: int):
    image = get_object_or_404(Image, id=image_id)
    return render(request, "search/image.html", {"image": image})


@require_http_methods(["POST"])
def judge(request):
    """One click on a result: record the grade and go back to the same results page."""
    back = request.POST.get("next") or reverse("search:page")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("search:page")
    if not request.user.is_authenticated:
        return redirect_to_login(back)
    form = JudgeForm(request.POST)
    if not form.is_valid():
        return judgment_refused(request, form.first_error(), status=400)
    try:
        judgment_record(
            curator=request.user,
            image_id=form.cleaned_data["image"],
            grade=form.cleaned_data["grade"],
            query_text=form.cleaned_data["q"],
        )
    except JudgmentNotAllowed:
        return judgment_refused(request, "You may not judge results.", status=403)
    except InvalidJudgment as error:
        return judgment_refused(request, str(error), status=400)
    return HttpResponseRedirect(back)


def judgment_refused(request, reason: str, *, status: int):
    # The reason can quote the request (a bad grade, a query); the template escapes it.
    return render(request, f"{status}.html", {"reason": f"The judgment was not recorded: {reason}"}, status=status)
