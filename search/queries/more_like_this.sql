-- more_like_this: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: NULL
-- $2: HalfVector(1280)
-- $3: NULL
-- $4: 1.0
-- $5: 42
WITH query AS MATERIALIZED (SELECT %s::halfvec AS vector, %s::halfvec AS features, %s::halfvec AS multilingual)
SELECT image_id, sum(weight / (60 + rank)) AS score
FROM (
SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
    SELECT e.image_id, 1 - (e.feature_vector <=> (SELECT features FROM query)) AS similarity
    FROM embeddings_imageembedding e
    WHERE e.version_id = 3 AND e.feature_vector IS NOT NULL
    ORDER BY e.feature_vector <=> (SELECT features FROM query)
    LIMIT 100
) candidates) ranked
WHERE image_id <> %s
GROUP BY image_id
ORDER BY score DESC, image_id
