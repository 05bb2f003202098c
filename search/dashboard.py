"""The admin's analytics page (staff only, wrapped in `admin.site.admin_view` by the URLconf,
and only for those who may read the query log it is made from): each panel reads one selector of search/analytics.py, draws it as SVG where a plot says
more than a list, and offers the same rows as CSV."""
import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from . import analytics
from .analytics import Table
from .svg import chart

# The searches the panels count are the query log's rows: the same permission reads both.
PERMISSION = "search.view_querylog"

# Columns holding an image id, linked to the image's admin page.
IMAGE_COLUMNS = {"image_id", "duplicate_id", "neighbour_id"}
SHOWN_ROWS = 25
REFRESHED = "Computed hourly by the scheduler, or now with `manage.py analytics_refresh` (refreshed_at)."


def drift_histogram() -> Table:
    pair = analytics.drift_versions()
    if pair is None:
        return Table(columns=("distance_from", "distance_to", "images"), rows=[])
    return analytics.vector_drift_histogram(from_version=pair[0], to_version=pair[1])


def drift_images() -> Table:
    pair = analytics.drift_versions()
    if pair is None:
        return Table(columns=("image_id", "title", "image_distance", "text_distance"), rows=[])
    return analytics.vector_drift(from_version=pair[0], to_version=pair[1])


def search_days_charts(table: Table) -> list[SafeString]:
    days = [day.strftime("%m-%d") for day in table.column("day")]
    return [
        chart(title="Searches per day", x_labels=days, series={"searches": table.column("searches")}, x_title="day (UTC)", y_title="searches", kind="bar"),
        chart(title="Latency per day", x_labels=days, series={"p50": table.column("p50_ms"), "p95": table.column("p95_ms")}, x_title="day (UTC)", y_title="milliseconds"),
        chart(
            title="Searches with nothing to show",
            x_labels=days,
            series={"zero results": table.column("zero_result_rate"), "no close match": table.column("no_close_match_rate")},
            x_title="day (UTC)",
            y_title="share of searches",
        ),
    ]


def version_charts(table: Table) -> list[SafeString]:
    versions = [f"v{number}" for number in table.column("number")]
    series = {name: table.column(column) for name, column in (("nDCG@10", "held_out_ndcg10"), ("Recall@10", "held_out_recall10"), ("MRR", "held_out_mrr"))}
    return [chart(title="Held-out metrics per version", x_labels=versions, series=series, x_title="model version", y_title="held-out score")]


def drift_charts(table: Table) -> list[SafeString]:
    bins = [f"{low:.1f}–{high:.1f}" for low, high in zip(table.column("distance_from"), table.column("distance_to"))]
    pair = analytics.drift_versions()
    title = f"How far image vectors moved, v{pair[0].number} → v{pair[1].number}" if pair else "How far image vectors moved"
    return [chart(title=title, x_labels=bins, series={"images": table.column("images")}, x_title="cosine distance", y_title="images", kind="bar")]


@dataclass(frozen=True)
class Panel:
    slug: str
    title: str
    read: Callable[[], Table]
    note: str = ""
    charts: Callable[[Table], list[SafeString]] = field(default=lambda table: [])
    show_rows: bool = True


# Plots first, then the lists.
PANELS = [
    Panel("search-days", "Search health, last 30 days", analytics.search_days, charts=search_days_charts, show_rows=False,
          note="Searches are first pages; latency covers every request. No close match: text searches where nothing passed the relevance cut-off."),
    Panel("versions", "Model versions", analytics.version_metrics, charts=version_charts, note="Each trained version's held-out metrics, on the judged queries held out for its own run."),
    Panel("drift", "Vector drift between versions", drift_histogram, charts=drift_charts, show_rows=False),
    Panel("top-queries", "Top queries", analytics.queries_top),
    Panel("unjudged-queries", "Asked, never judged", analytics.queries_unjudged, note="The most asked text queries without a current judgment: where curators should look next."),
    Panel("near-duplicates", "Near duplicates", analytics.duplicates_near, note=f"Pairs whose CNN features are within cosine distance {analytics.NEAR_DUPLICATE_DISTANCE} (active version). {REFRESHED}"),
    Panel("category-outliers", "Far from their category", analytics.category_outliers,
          note="Images farthest from their category's centroid, in standard deviations of the category (categories of 5 or more): likely miscategorised."),
    Panel("category-overlap", "Categories that overlap", analytics.category_overlaps, note="Cosine similarity of category centroids less the catalog's mean vector, which every picture shares: "
          "0 is no more alike than any two pictures, near 1 the same kind of picture, below 0 unlike."),
    Panel("undescribed", "Images without words, and their nearest described images", analytics.undescribed_neighbours,
          note=f"What each bare image borrows its neighbour vector from; a start for its description. {REFRESHED}"),
    Panel("drift-images", "Images that moved most", drift_images),
]
PANELS_BY_SLUG = {panel.slug: panel for panel in PANELS}


def shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def query_log_readers_only(view):
    @wraps(view)
    def checked(request, *args, **kwargs):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return checked


@query_log_readers_only
def analytics_dashboard(request):
    panels = []
    for panel in PANELS:
        table = panel.read()
        rows = [
            [(shown(value), value if column in IMAGE_COLUMNS else None) for column, value in zip(table.columns, row)]
            for row in table.rows[:SHOWN_ROWS]
        ]
        panels.append({"panel": panel, "table": table, "charts": panel.charts(table), "rows": rows if panel.show_rows else None})
    context = {**admin.site.each_context(request), "title": "Analytics", "panels": panels, "shown_rows": SHOWN_ROWS}
    return TemplateResponse(request, "admin/analytics/dashboard.html", context)


@query_log_readers_only
def analytics_csv(request, slug: str):
    panel = PANELS_BY_SLUG.get(slug)
    if panel is None:
        raise Http404(f"no analytics table is called {slug}")
    table = panel.read()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="glimpse-{slug}.csv"'
    writer = csv.writer(response)
    writer.writerow(table.columns)
    writer.writerows([csv_cell(value) for value in row] for row in table.rows)
    return response


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(…) in a
# visitor's query); a leading ' makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
