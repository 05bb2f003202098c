"""Views (two of them materialised) and two functions for analysts; docs/analytics.md
shows one query each.

Vector columns are cast to `vector` wherever they are aggregated or compared across
rows, so the same SQL serves `vector` and `halfvec` columns. The two searches that walk
a version's HNSW graph (near duplicates, neighbours of bare images) are plpgsql
functions that put the version id into their statement as a constant: the indexes are
partial (`WHERE version_id = N`), and the planner uses one only when it can prove the
predicate, which a column reference from a view cannot do. Even so they walk the graph
once per image (about 12 s and 3 s for 10,000 images on 2 busy cores,
bench/analytics_views.py), too slow for a page, so their active-version results are
materialised views, refreshed by `manage.py analytics_refresh` and hourly by the
scheduler; each records when it was computed.
"""
from django.db import migrations, models

SEARCH_DAILY = """
CREATE VIEW analytics_search_daily AS
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE "offset" = 0) AS searches,
       count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
       avg((total = 0)::int) FILTER (WHERE "offset" = 0)::float AS zero_result_rate,
       avg(nearest_only::int) FILTER (WHERE "offset" = 0 AND kind = 'text')::float AS no_close_match_rate
FROM search_querylog
GROUP BY 1"""

TOP_QUERIES = """
CREATE VIEW analytics_top_queries AS
SELECT left(lower(regexp_replace(btrim(text), '\\s+', ' ', 'g')), 300) AS query,
       count(*) AS searches,
       max(created_at) AS last_searched,
       avg((total = 0)::int)::float AS zero_result_rate,
       avg(nearest_only::int)::float AS no_close_match_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms
FROM search_querylog
WHERE kind = 'text' AND "offset" = 0 AND btrim(text) <> ''
GROUP BY 1"""

UNJUDGED_QUERIES = """
CREATE VIEW analytics_unjudged_queries AS
SELECT query, searches, last_searched, zero_result_rate, no_close_match_rate
FROM analytics_top_queries asked
WHERE NOT EXISTS (
    SELECT 1 FROM search_relevancejudgment judgment
    WHERE judgment.query_key = asked.query AND judgment.is_current
)"""

NEAR_DUPLICATE_PAIRS = """
CREATE FUNCTION analytics_near_duplicate_pairs(version bigint, max_distance double precision DEFAULT 0.02, neighbours integer DEFAULT 5)
RETURNS TABLE (version_id bigint, image_id bigint, duplicate_id bigint, distance double precision)
LANGUAGE plpgsql STABLE
-- A materialised view's refresh runs with a search_path of pg_catalog only.
SET search_path FROM CURRENT
AS $body$
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT one.version_id, one.image_id, near.image_id, near.distance
        FROM embeddings_imageembedding one
        CROSS JOIN LATERAL (
            SELECT other.image_id, other.feature_vector <=> one.feature_vector AS distance
            FROM embeddings_imageembedding other
            WHERE other.version_id = %1$s AND other.image_id <> one.image_id
            ORDER BY other.feature_vector <=> one.feature_vector
            LIMIT %3$s
        ) near
        WHERE one.version_id = %1$s AND one.feature_vector IS NOT NULL
            AND near.distance <= %2$L AND one.image_id < near.image_id
        $sql$, version, max_distance, neighbours);
END
$body$"""

NEAR_DUPLICATES = """
CREATE MATERIALIZED VIEW analytics_near_duplicates AS
SELECT now() AS refreshed_at, pair.version_id, pair.image_id, one.title, pair.duplicate_id, other.title AS duplicate_title, pair.distance
FROM embeddings_modelversion version
CROSS JOIN LATERAL analytics_near_duplicate_pairs(version.id) pair
JOIN catalog_image one ON one.id = pair.image_id
JOIN catalog_image other ON other.id = pair.duplicate_id
WHERE version.state = 'active'"""

# Unique, so a refresh can run CONCURRENTLY: readers keep the old rows meanwhile.
NEAR_DUPLICATES_KEY = "CREATE UNIQUE INDEX analytics_near_duplicates_pair ON analytics_near_duplicates (image_id, duplicate_id)"

CATEGORY_CENTROIDS = """
CREATE VIEW analytics_category_centroids AS
SELECT embedding.version_id, image.category, count(*) AS images, avg(embedding.image_vector::vector) AS centroid
FROM embeddings_imageembedding embedding
JOIN catalog_image image ON image.id = embedding.image_id
WHERE image.category <> ''
GROUP BY embedding.version_id, image.category"""

CATEGORY_OUTLIERS = """
CREATE VIEW analytics_category_outliers AS
WITH distances AS (
    SELECT embedding.version_id, embedding.image_id, image.title, image.category, centroid.images AS category_images,
           embedding.image_vector::vector <=> centroid.centroid AS distance
    FROM embeddings_imageembedding embedding
    JOIN catalog_image image ON image.id = embedding.image_id
    JOIN analytics_category_centroids centroid
        ON centroid.version_id = embedding.version_id AND centroid.category = image.category
)
SELECT version_id, image_id, title, category, category_images, distance,
       (distance - avg(distance) OVER category) / nullif(stddev_pop(distance) OVER category, 0) AS z_score
FROM distances
WINDOW category AS (PARTITION BY version_id, category)"""

CATEGORY_OVERLAP = """
CREATE VIEW analytics_category_overlap AS
SELECT one.version_id, one.category, other.category AS other_category, one.images, other.images AS other_images,
       1 - (one.centroid <=> other.centroid) AS similarity
FROM analytics_category_centroids one
JOIN analytics_category_centroids other ON other.version_id = one.version_id AND other.category > one.category"""

UNDESCRIBED_NEIGHBOUR_LIST = """
CREATE FUNCTION analytics_undescribed_neighbour_list(version bigint, neighbours integer DEFAULT 5)
RETURNS TABLE (version_id bigint, image_id bigint, neighbour_id bigint, similarity double precision, rank bigint)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
-- The walk skips bare images, so it must go on past them until it has enough described ones.
SET hnsw.iterative_scan = 'relaxed_order'
AS $body$
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT bare.version_id, bare.image_id, near.image_id, 1 - near.distance,
               row_number() OVER (PARTITION BY bare.image_id ORDER BY near.distance, near.image_id)
        FROM embeddings_imageembedding bare
        CROSS JOIN LATERAL (
            SELECT described.image_id, described.feature_vector <=> bare.feature_vector AS distance
            FROM embeddings_imageembedding described
            WHERE described.version_id = %1$s AND described.text_vector IS NOT NULL
            ORDER BY described.feature_vector <=> bare.feature_vector
            LIMIT %2$s
        ) near
        WHERE bare.version_id = %1$s AND bare.text_vector IS NULL AND bare.feature_vector IS NOT NULL
        $sql$, version, neighbours);
END
$body$"""

UNDESCRIBED_NEIGHBOURS = """
CREATE MATERIALIZED VIEW analytics_undescribed_neighbours AS
SELECT now() AS refreshed_at, near.version_id, near.image_id, near.rank, near.neighbour_id, neighbour.title AS neighbour_title,
       neighbour.description AS neighbour_description, neighbour.tags AS neighbour_tags, near.similarity
FROM embeddings_modelversion version
CROSS JOIN LATERAL analytics_undescribed_neighbour_list(version.id) near
JOIN catalog_image neighbour ON neighbour.id = near.neighbour_id
WHERE version.state = 'active'"""

UNDESCRIBED_NEIGHBOURS_KEY = "CREATE UNIQUE INDEX analytics_undescribed_neighbours_rank ON analytics_undescribed_neighbours (image_id, rank)"

VERSION_METRICS = """
CREATE VIEW analytics_version_metrics AS
SELECT version.id AS version_id, version.number, version.kind, version.state,
       version.created_at, version.activated_at, version.retired_at,
       (version.metrics ->> 'released')::boolean AS released,
       (version.metrics #>> '{held_out,candidate,nDCG@10}')::float AS held_out_ndcg10,
       (version.metrics #>> '{held_out,candidate,Recall@10}')::float AS held_out_recall10,
       (version.metrics #>> '{held_out,candidate,MRR}')::float AS held_out_mrr,
       (version.metrics #>> '{held_out,candidate,queries}')::integer AS held_out_queries,
       version.metrics ->> 'started_from' AS compared_with,
       (baseline.metrics ->> 'nDCG@10')::float AS compared_ndcg10
FROM embeddings_modelversion version
LEFT JOIN LATERAL (
    SELECT value AS metrics FROM jsonb_each(version.metrics -> 'held_out') WHERE key LIKE 'active_v%' LIMIT 1
) baseline ON true"""

VECTOR_DRIFT = """
CREATE VIEW analytics_vector_drift AS
SELECT earlier.version_id AS from_version_id, later.version_id AS to_version_id, earlier.image_id,
       earlier.image_vector::vector <=> later.image_vector::vector AS image_distance,
       earlier.text_vector::vector <=> later.text_vector::vector AS text_distance
FROM embeddings_imageembedding earlier
JOIN embeddings_imageembedding later ON later.image_id = earlier.image_id AND later.version_id <> earlier.version_id"""

# In creation order; each is dropped before what it reads.
OBJECTS = [
    (SEARCH_DAILY, "DROP VIEW analytics_search_daily"),
    (TOP_QUERIES, "DROP VIEW analytics_top_queries"),
    (UNJUDGED_QUERIES, "DROP VIEW analytics_unjudged_queries"),
    (NEAR_DUPLICATE_PAIRS, "DROP FUNCTION analytics_near_duplicate_pairs"),
    (NEAR_DUPLICATES, "DROP MATERIALIZED VIEW analytics_near_duplicates"),
    (NEAR_DUPLICATES_KEY, migrations.RunSQL.noop),
    (CATEGORY_CENTROIDS, "DROP VIEW analytics_category_centroids"),
    (CATEGORY_OUTLIERS, "DROP VIEW analytics_category_outliers"),
    (CATEGORY_OVERLAP, "DROP VIEW analytics_category_overlap"),
    (UNDESCRIBED_NEIGHBOUR_LIST, "DROP FUNCTION analytics_undescribed_neighbour_list"),
    (UNDESCRIBED_NEIGHBOURS, "DROP MATERIALIZED VIEW analytics_undescribed_neighbours"),
    (UNDESCRIBED_NEIGHBOURS_KEY, migrations.RunSQL.noop),
    (VERSION_METRICS, "DROP VIEW analytics_version_metrics"),
    (VECTOR_DRIFT, "DROP VIEW analytics_vector_drift"),
]


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0003_search_document_category"),
        ("embeddings", "0006_neighbour_vector"),
        ("search", "0003_honest_judged_query"),
    ]

    operations = [
        migrations.AddField(
            model_name="querylog",
            name="nearest_only",
            field=models.BooleanField(default=False, help_text="nothing passed the relevance cut-off; the nearest were shown"),
        ),
        *[migrations.RunSQL(create, drop) for create, drop in OBJECTS],
    ]
