import dataclasses

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponsePermanentRedirect, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from catalog.models import Image
from catalog.selectors import categories_top, category_paths, images_recent, tags_for_examples
from embeddings.exceptions import NoActiveVersion

from .exceptions import InvalidJudgment, InvalidQuery, JudgmentNotAllowed, QueryImageNotFound, TagNotAllowed
from .forms import JudgeForm, SearchForm
from .judgments import PERMISSION, TAG_PERMISSION, current_grades, judgment_record
from .previews import upload_preview
from .query_pictures import query_picture_preview, query_picture_preview_keep
from .services import search_run

RECENT_ON_HOME = 12
EXAMPLES_ON_HOME = 6
# A results page's query string, passed to the image page for its way back.
MAX_BACK_CHARS = 2000


@csrf_exempt  # a search by picture writes nothing a visitor owns, as a search by words does not
@require_http_methods(["GET", "HEAD", "POST"])
def search_page(request):
    # A search by picture is posted with the words and filters of the same form.
    data = request.POST if request.method == "POST" else request.GET
    submitted = bool(data or request.FILES)
    form = SearchForm(data if submitted else None, request.FILES or None)
    context = {"form": form, "results": None, "error": "", "categories": category_paths()}
    status = 400
    if not submitted:
        context["recent"] = images_recent(limit=RECENT_ON_HOME)
        context["top_categories"] = categories_top()
        context["examples"] = tags_for_examples(limit=EXAMPLES_ON_HOME)
    else:
        if form.is_valid():
            query = form.search_query(default_limit=settings.GLIMPSE_SEARCH_PAGE_SIZE)
            # Curators see what their grades hid from visitors, so they can regrade it.
            query = dataclasses.replace(query, show_hidden=request.user.has_perm(PERMISSION))
            try:
                context["results"] = search_run(query=query, log_query=not regraded(request))
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
            context["last_page"] = max(1, -(-results.total // results.limit))
            context["query_string"] = search_params(form, picture=results.picture)
            context["back"] = context["query_string"].urlencode() + (f"&page={page}" if page > 1 else "")
            if request.FILES.get("image"):
                preview = upload_preview(upload=request.FILES["image"])
                query_picture_preview_keep(key=results.picture, preview=preview)
                context["query_picture"] = preview
            elif results.picture:
                context["query_picture"] = query_picture_preview(key=results.picture)
            elif form.cleaned_data.get("like"):
                context["like_image"] = Image.objects.filter(id=form.cleaned_data["like"]).first()
            query = form.cleaned_data.get("q") or ""
            if query and not results.picture and request.user.has_perm(PERMISSION):
                context["can_judge"] = True
                context["can_tag"] = request.user.has_perm(TAG_PERMISSION)
                grades = current_grades(curator=request.user, query_text=query, image_ids=results.image_ids)
                context["grades"] = grades
                for hit in results.hits:
                    hit.image.my_grade = grades.get(hit.image.id)
    return render(request, "search/page.html", context, status=status if context["error"] else 200)


# The session remembers the results page a grade returns to: showing it again is no search.
REGRADED_PAGE = "glimpse_regraded_page"


def regraded(request) -> bool:
    """Whether this request is the results page a curator's grade just returned to (once)."""
    return request.session.pop(REGRADED_PAGE, None) == request.get_full_path()


def search_params(form: SearchForm, *, picture: str) -> QueryDict:
    """The search as a query string, less its page: what the page links build on. A posted
    picture becomes its key, so that its next pages need no upload."""
    params = QueryDict(mutable=True)
    for name in form.fields:
        if name not in ("page", "image", "picture") and form.data.get(name):
            params.setlist(name, form.data.getlist(name))
    if picture:
        params["picture"] = picture
    return params


def image_detail(request, image_id: int):
    image = get_object_or_404(Image, id=image_id)
    back = results_url(request.GET.get("back", ""))
    return render(request, "search/image.html", {"image": image, "back": back, "back_to_results": back != reverse("search:page")})


def results_url(back: str) -> str:
    """The results page a visitor came from, rebuilt from its query string only when that
    is a valid search (never a URL of its own, so never an open redirect); else the home page."""
    home = reverse("search:page")
    if not back or len(back) > MAX_BACK_CHARS:
        return home
    params = QueryDict(back)
    form = SearchForm(params)
    if not form.is_valid():
        return home
    kept = QueryDict(mutable=True)
    for name in form.fields:
        if name in params:
            kept.setlist(name, params.getlist(name))
    return f"{home}?{kept.urlencode()}" if kept else home


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
            tag=form.cleaned_data["tag"],
        )
    except TagNotAllowed:
        return judgment_refused(request, "You may not change pictures’ tags.", status=403)
    except JudgmentNotAllowed:
        return judgment_refused(request, "You may not judge results.", status=403)
    except InvalidJudgment as error:
        return judgment_refused(request, str(error), status=400)
    request.session[REGRADED_PAGE] = back
    return HttpResponseRedirect(back)


def judgment_refused(request, reason: str, *, status: int):
    # The reason can quote the request (a bad grade, a query); the template escapes it.
    return render(request, f"{status}.html", {"reason": f"The judgment was not recorded: {reason}"}, status=status)


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs)."""
    return HttpResponsePermanentRedirect(static("search/favicon.svg"))
