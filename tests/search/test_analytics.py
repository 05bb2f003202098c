"""The analytics views' numbers on hand-made rows, their CSV downloads and the dashboard."""
import csv
import io
from datetime import date, datetime, timezone

import numpy as np
import pytest
from django.db import connection

from embeddings.models import FEATURE_DIMENSIONS, ImageEmbedding, ModelVersion
from search import analytics
from search.models import QueryLog, RelevanceJudgment
from tests.conftest import unit

DAY_ONE = date(2026, 11, 2)
DAY_TWO = date(2026, 11, 3)
# Vectors are stored in half precision: 11 significant bits per value, so a cosine read
# from the database is within about 1e-4 of the float32 one computed here.
HALF_PRECISION = 1e-4


def feature(*weights: float) -> np.ndarray:
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def cosine_distance(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return 1 - float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def log(version, *, day: date, text: str = "", kind: str = "text", total: int = 1, latency_ms: float, offset: int = 0, nearest_only: bool = False):
    row = QueryLog.objects.create(
        kind=kind, text=text, mode="hybrid", total=total, latency_ms=latency_ms, offset=offset, nearest_only=nearest_only, version=version
    )
    QueryLog.objects.filter(id=row.id).update(created_at=datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc))


@pytest.fixture
def query_log(version):
    log(version, day=DAY_ONE, text="Red  Apple", total=3, latency_ms=10)
    log(version, day=DAY_ONE, text="red apple", total=0, latency_ms=30)
    log(version, day=DAY_ONE, text="cat", total=5, latency_ms=20, nearest_only=True)
    log(version, day=DAY_ONE, text="cat", total=5, latency_ms=100, offset=20)  # page 2: a request, not a search
    log(version, day=DAY_TWO, kind="image", total=7, latency_ms=40)


def test_search_days_count_searches_percentiles_and_rates(query_log):
    table = analytics.search_days(days=3, today=DAY_TWO)
    assert table.columns == ("day", "searches", "requests", "p50_ms", "p95_ms", "zero_result_rate", "no_close_match_rate")
    # Latency over all four requests of day one, 10 20 30 100: p50 = 25, p95 = 30 + 0.85 × 70.
    assert table.rows == [
        (date(2026, 11, 1), 0, 0, None, None, None, None),
        (DAY_ONE, 3, 4, 25.0, pytest.approx(89.5), pytest.approx(1 / 3), pytest.approx(1 / 3)),
        (DAY_TWO, 1, 1, 40.0, 40.0, 0.0, None),
    ]


def test_top_queries_are_normalised_first_pages(query_log):
    table = analytics.queries_top()
    assert [row[:2] for row in table.rows] == [("red apple", 2), ("cat", 1)]
    red, cat = (dict(zip(table.columns, row)) for row in table.rows)
    assert (red["zero_result_rate"], red["no_close_match_rate"], red["p50_ms"]) == (0.5, 0.0, 20.0)
    assert (cat["zero_result_rate"], cat["no_close_match_rate"], cat["p50_ms"]) == (0.0, 1.0, 20.0)


def test_unjudged_queries_leave_out_queries_with_a_current_judgment(query_log, make_images, curator, version):
    (image,) = make_images([{"title": "an apple"}])
    RelevanceJudgment.objects.create(query_key="cat", query_text="cat", image=image, grade=2, curator=curator, version=version)
    RelevanceJudgment.objects.create(query_key="red apple", query_text="red apple", image=image, grade=3, curator=curator, version=version, is_current=False)
    assert [row[:2] for row in analytics.queries_unjudged().rows] == [("red apple", 2)]


def test_near_duplicates_are_pairs_within_the_distance(make_images, version):
    close = feature(1, 0.05)
    a, b, c, d = make_images(
        [
            {"title": "a", "image_vector": unit(1), "feature_vector": feature(1)},
            {"title": "b", "image_vector": unit(1), "feature_vector": close},
            {"title": "c", "image_vector": unit(0, 1), "feature_vector": feature(0, 1)},
            {"title": "d", "image_vector": unit(0, 1), "feature_vector": feature(0, 1, 0.5)},  # distance 0.106: not a duplicate
        ]
    )
    assert analytics.duplicates_near().rows == []  # until the materialised view is refreshed
    analytics.analytics_refresh()
    table = analytics.duplicates_near()
    assert [row[:5] for row in table.rows] == [(a.id, "a", b.id, "b", pytest.approx(cosine_distance(feature(1), close), abs=HALF_PRECISION))]
    with connection.cursor() as cursor:  # any version, any distance: the function the view reads
        cursor.execute("SELECT image_id, duplicate_id FROM analytics_near_duplicate_pairs(%s, 0.2) ORDER BY distance", [version.id])
        assert cursor.fetchall() == [(a.id, b.id), (c.id, d.id)]


def test_category_outliers_are_ranked_by_distance_from_the_centroid(make_images, version):
    vectors = [unit(1), unit(1), unit(0, 1)]
    images = make_images([{"title": f"fruit {index}", "category": "fruit", "image_vector": vector} for index, vector in enumerate(vectors)])
    make_images([{"title": "alone", "category": "other", "image_vector": unit(1)}])
    centroid = np.mean(vectors, axis=0)
    distances = np.array([cosine_distance(vector, centroid) for vector in vectors])
    z_scores = (distances - distances.mean()) / distances.std()
    table = analytics.category_outliers(min_images=3)
    assert [row[0] for row in table.rows] == [images[2].id, images[0].id, images[1].id]
    outlier = dict(zip(table.columns, table.rows[0]))
    assert outlier["category"] == "fruit" and outlier["category_images"] == 3
    assert outlier["distance"] == pytest.approx(1 - 1 / np.sqrt(5), abs=HALF_PRECISION)
    assert outlier["z_score"] == pytest.approx(z_scores[2], abs=HALF_PRECISION)
    assert len(analytics.category_outliers(min_images=1).rows) == 4


def test_category_overlap_compares_centroids_beyond_what_every_picture_shares(make_images, version):
    """Every vector of a real catalog leans the same way (the raw centroids' cosines were
    0.98-0.99 for every pair); past the catalog's mean the categories come apart."""
    vectors = {
        "cats": [unit(5, 1, 0, 0), unit(5, 1, 0.2, 0)],
        "lions": [unit(5, 1, 0.1, 0.3)],
        "fish": [unit(5, 0, 0, 1), unit(5, 0, 0.1, 1)],
    }
    uncategorised = unit(5, 0, 1, 0)
    make_images([{"category": category, "image_vector": vector} for category, group in vectors.items() for vector in group])
    make_images([{"title": "no category", "image_vector": uncategorised}])
    centroids = {category: np.mean(group, axis=0) for category, group in vectors.items()}
    mean = np.mean([vector for group in vectors.values() for vector in group] + [uncategorised], axis=0)
    assert min(1 - cosine_distance(centroids[a], centroids[b]) for a, b in [("cats", "fish"), ("cats", "lions"), ("fish", "lions")]) > 0.96

    table = analytics.category_overlaps()
    assert table.columns == ("category", "other_category", "images", "other_images", "centred_similarity")
    assert [row[:4] for row in table.rows] == [("cats", "lions", 2, 1), ("fish", "lions", 2, 1), ("cats", "fish", 2, 2)]
    expected = [1 - cosine_distance(centroids[a] - mean, centroids[b] - mean) for a, b in [("cats", "lions"), ("fish", "lions"), ("cats", "fish")]]
    assert [row[4] for row in table.rows] == [pytest.approx(value, abs=1e-3) for value in expected]
    assert table.rows[0][4] > 0.85 and table.rows[2][4] < -0.85  # alike and unlike, where both read 0.96 or more before


def test_a_category_at_the_catalogs_mean_has_no_overlap_rather_than_nan(make_images, version):
    make_images(
        [
            {"category": "opposites", "image_vector": unit(1, 0)},
            {"category": "opposites", "image_vector": unit(-1, 0)},
            {"category": "up", "image_vector": unit(0, 1)},
            {"title": "down", "image_vector": unit(0, -1)},
        ]
    )
    assert analytics.category_overlaps().rows == [("opposites", "up", 2, 1, None)]  # its centroid is the mean: no direction


def test_bare_images_get_their_nearest_described_images(make_images, version):
    bare, near, far, other_bare = make_images(
        [
            {"image_vector": unit(1), "feature_vector": feature(1)},
            {"title": "near", "description": "a red thing", "tags": ("red",), "image_vector": unit(1), "text_vector": unit(1), "feature_vector": feature(1, 0.3)},
            {"title": "far", "image_vector": unit(1), "text_vector": unit(1), "feature_vector": feature(0.2, 1)},
            {"image_vector": unit(1), "feature_vector": feature(1, 0.1)},
        ]
    )
    analytics.analytics_refresh()
    table = analytics.undescribed_neighbours()
    assert [row[:7] for row in table.rows] == [
        (bare.id, 1, near.id, "near", "a red thing", "red", pytest.approx(1 - cosine_distance(feature(1), feature(1, 0.3)), abs=HALF_PRECISION)),
        (bare.id, 2, far.id, "far", "", "", pytest.approx(1 - cosine_distance(feature(1), feature(0.2, 1)), abs=HALF_PRECISION)),
        (other_bare.id, 1, near.id, "near", "a red thing", "red", pytest.approx(1 - cosine_distance(feature(1, 0.1), feature(1, 0.3)), abs=HALF_PRECISION)),
        (other_bare.id, 2, far.id, "far", "", "", pytest.approx(1 - cosine_distance(feature(1, 0.1), feature(0.2, 1)), abs=HALF_PRECISION)),
    ]


@pytest.fixture
def second_version(version):
    return ModelVersion.objects.create(
        number=2,
        kind=ModelVersion.Kind.HEADS,
        state=ModelVersion.State.RETIRED,
        image_model=version.image_model,
        text_model=version.text_model,
        trained_from=version,
        metrics={
            "held_out": {"candidate": {"nDCG@10": 0.3, "Recall@10": 0.2, "MRR": 0.25, "queries": 12}, "active_v1": {"nDCG@10": 0.28}},
            "released": False,
            "started_from": "v1",
        },
    )


def test_version_metrics_read_the_held_out_figures(second_version):
    table = analytics.version_metrics()
    rows = [dict(zip(table.columns, row)) for row in table.rows]
    assert [row["number"] for row in rows] == [1, 2]
    assert rows[0]["held_out_ndcg10"] is None and rows[0]["released"] is None
    assert {key: rows[1][key] for key in ("kind", "state", "released", "held_out_ndcg10", "held_out_recall10", "held_out_mrr", "held_out_queries", "compared_with", "compared_ndcg10")} == {
        "kind": "heads", "state": "retired", "released": False, "held_out_ndcg10": 0.3, "held_out_recall10": 0.2,
        "held_out_mrr": 0.25, "held_out_queries": 12, "compared_with": "v1", "compared_ndcg10": 0.28,
    }


def test_vector_drift_per_image_and_as_a_histogram(make_images, version, second_version):
    moved, still = make_images([{"title": "moved", "image_vector": unit(1)}, {"title": "still", "image_vector": unit(1), "text_vector": unit(0, 1)}])
    ImageEmbedding.objects.bulk_create(
        [
            ImageEmbedding(image=moved, version=second_version, image_vector=unit(1, 1)),
            ImageEmbedding(image=still, version=second_version, image_vector=unit(1), text_vector=unit(0, 1)),
        ]
    )
    table = analytics.vector_drift(from_version=version, to_version=second_version)
    assert table.rows == [(moved.id, "moved", pytest.approx(1 - 1 / np.sqrt(2), abs=HALF_PRECISION), None), (still.id, "still", pytest.approx(0, abs=HALF_PRECISION), pytest.approx(0, abs=HALF_PRECISION))]
    histogram = analytics.vector_drift_histogram(from_version=version, to_version=second_version, bins=4)
    assert histogram.rows == [(0.0, 0.25, 1), (0.25, 0.5, 1), (0.5, 0.75, 0), (0.75, 1.0, 0)]
    assert analytics.drift_versions() is None  # v1 is active and was trained from nothing


@pytest.fixture
def staff(db, django_user_model):
    """Staff who may read the query log, and so its analytics."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("analyst", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_querylog"))
    return user


def test_the_dashboard_plots_with_axes_for_staff(client, staff, query_log):
    client.force_login(staff)
    response = client.get("/admin/analytics/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox") == 5
    for label in ("Searches per day", "day (UTC)", "milliseconds", "share of searches", "model version", "held-out score", '<text class="tick"'):
        assert label in page
    assert "red apple" in page
    for panel in analytics_panels():
        assert f'href="/admin/analytics/{panel}.csv"' in page
    assert 'href="/admin/analytics/"' in client.get("/admin/").content.decode()


def analytics_panels():
    from search.dashboard import PANELS

    return [panel.slug for panel in PANELS]


def test_csv_downloads_hold_every_row(client, staff, query_log):
    client.force_login(staff)
    for slug in analytics_panels():
        response = client.get(f"/admin/analytics/{slug}.csv")
        assert response.status_code == 200, slug
        assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(client.get("/admin/analytics/top-queries.csv").content.decode())))
    assert rows[0] == ["query", "searches", "last_searched", "zero_result_rate", "no_close_match_rate", "p50_ms"]
    assert [row[:2] for row in rows[1:]] == [["red apple", "2"], ["cat", "1"]]
    assert client.get("/admin/analytics/nothing.csv").status_code == 404


def test_the_dashboard_is_for_staff_only(client, visitor):
    for url in ("/admin/analytics/", "/admin/analytics/top-queries.csv"):
        assert client.get(url).status_code == 302
        client.force_login(visitor)
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
        client.logout()


def test_staff_who_may_not_read_the_query_log_may_not_read_its_analytics(client, django_user_model):
    other = django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    client.force_login(other)
    statuses = [client.get(url).status_code for url in ("/admin/search/querylog/", "/admin/analytics/", "/admin/analytics/top-queries.csv")]
    assert statuses == [403, 403, 403]
    assert 'id="analytics-link"' not in client.get("/admin/").content.decode()


def test_the_refresh_command_says_what_it_refreshed(make_images, version):
    from django.core.management import call_command

    make_images([{"title": "a", "image_vector": unit(1), "feature_vector": feature(1)}, {"title": "b", "image_vector": unit(1), "feature_vector": feature(1, 0.01)}])
    output = io.StringIO()
    call_command("analytics_refresh", stdout=output)
    assert output.getvalue().startswith("refreshed analytics_near_duplicates, analytics_undescribed_neighbours in ")
    assert len(analytics.duplicates_near().rows) == 1


@pytest.mark.parametrize("query", ['=HYPERLINK("http://evil.example/","x")', "+cmd", "-cat", "@SUM(A1)"])
def test_csv_cells_that_a_spreadsheet_would_run_are_text(client, staff, version, query):
    log(version, day=DAY_ONE, text=query, latency_ms=10)
    client.force_login(staff)
    rows = list(csv.reader(io.StringIO(client.get("/admin/analytics/top-queries.csv").content.decode(), newline="")))
    assert rows[1][:2] == ["'" + query.lower(), "1"]


def test_csv_cells_keep_numbers_and_quote_tabs_and_carriage_returns():
    from search.dashboard import csv_cell

    assert [csv_cell(value) for value in ("\tx", "\rx", "a=b", -0.5, 3, None, date(2026, 1, 2))] == ["'\tx", "'\rx", "a=b", -0.5, 3, "", "2026-01-02"]
