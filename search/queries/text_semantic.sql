-- text_semantic: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: HalfVector(384)
-- $2: NULL
-- $3: HalfVector(384)
-- $4: [7, 3]
-- $5: 0.75
-- $6: 0.75
-- $7: 1.0
-- $8: 1.0
-- $9: 'multilingual-e5-small'
-- $10: 0.88
WITH query AS MATERIALIZED (SELECT %s::halfvec AS vector, %s::halfvec AS features, %s::halfvec AS multilingual)
SELECT image_id, sum(weight / (60 + rank)) AS score
FROM (
SELECT image_id, rank, 1.0 AS weight FROM unnest(%s::bigint[]) WITH ORDINALITY AS judged(image_id, rank)
UNION ALL

SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
    SELECT e.image_id, 1 - (e.text_vector <=> (SELECT vector FROM query)) AS similarity
    FROM embeddings_imageembedding e
    WHERE e.version_id = 3 AND e.text_vector IS NOT NULL
    ORDER BY e.text_vector <=> (SELECT vector FROM query)
    LIMIT 100
) candidates
UNION ALL

SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
    SELECT e.image_id, 1 - (COALESCE(e.neighbour_vector, e.image_vector) <=> (SELECT vector FROM query)) AS similarity
    FROM embeddings_imageembedding e
    WHERE e.version_id = 3 AND e.text_vector IS NULL
    ORDER BY COALESCE(e.neighbour_vector, e.image_vector) <=> (SELECT vector FROM query)
    LIMIT 100
) candidates
UNION ALL

SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
    SELECT e.image_id, 1 - (e.multilingual_text_vector <=> (SELECT multilingual FROM query)) AS similarity
    FROM embeddings_imageembedding e
    WHERE e.version_id = 3 AND e.multilingual_text_vector IS NOT NULL
    ORDER BY e.multilingual_text_vector <=> (SELECT multilingual FROM query)
    LIMIT 100
) candidates
UNION ALL

SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
    SELECT e.image_id, 1 - (COALESCE(e.multilingual_neighbour_vector, e.multilingual_image_vector) <=> (SELECT multilingual FROM query)) AS similarity
    FROM embeddings_imageembedding e
    WHERE e.version_id = 3 AND e.text_vector IS NULL AND e.multilingual_image_vector IS NOT NULL
    ORDER BY COALESCE(e.multilingual_neighbour_vector, e.multilingual_image_vector) <=> (SELECT multilingual FROM query)
    LIMIT 100
) candidates
UNION ALL

SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, 1.0 AS weight FROM (
    SELECT p.image_id, 1 - (p.vector <=> (SELECT multilingual FROM query)) AS similarity
    FROM embeddings_picturetextvector p
    WHERE p.text_model = %s
    ORDER BY p.vector <=> (SELECT multilingual FROM query)
    LIMIT 100
) candidates
WHERE similarity >= %s) ranked

GROUP BY image_id
ORDER BY score DESC, image_id
