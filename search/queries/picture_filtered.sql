-- picture_filtered: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: NULL
-- $2: HalfVector(1280)
-- $3: NULL
-- $4: 1.0
-- $5: 'animals'
-- $6: 'animals'
-- $7: ['cat']
-- $8: datetime.date(2024, 3, 1)
-- $9: datetime.date(2024, 3, 31)
WITH query AS MATERIALIZED (SELECT %s::halfvec AS vector, %s::halfvec AS features, %s::halfvec AS multilingual)
SELECT image_id, sum(weight / (60 + rank)) AS score
FROM (
SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
    SELECT e.image_id, 1 - (e.feature_vector <=> (SELECT features FROM query)) AS similarity
    FROM embeddings_imageembedding e JOIN catalog_image i ON i.id = e.image_id
    WHERE e.version_id = 3 AND e.feature_vector IS NOT NULL AND (i.category = %s OR starts_with(i.category, %s || '/')) AND i.tags @> %s AND i.created_at >= %s AND i.created_at < %s::date + 1
    ORDER BY e.feature_vector <=> (SELECT features FROM query)
    LIMIT 100
) candidates) ranked

GROUP BY image_id
ORDER BY score DESC, image_id
