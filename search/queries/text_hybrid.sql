-- text_hybrid: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: HalfVector(384)
-- $2: NULL
-- $3: HalfVector(384)
-- $4: [7, 3]
-- $5: 0.75
-- $6: 0.75
-- $7: 1.0
-- $8: 1.0
-- $9: ['red', 'apple', '"green pear"']
-- $10: ['banana']
-- $11: 100
-- $12: 'red apple "green pear"'
-- $13: 'red apple "green pear"'
-- $14: ['banana']
-- $15: 100
-- $16: 'multilingual-e5-small'
-- $17: 0.88
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

SELECT image_id, row_number() OVER (ORDER BY matched DESC, relevance DESC, image_id) AS rank,
       matched::numeric / greatest(counted, 1) AS weight FROM (
    SELECT i.id AS image_id, ts_rank_cd(i.search_document, k.query) AS relevance,
           (SELECT count(*) FROM unnest(k.terms) term WHERE i.search_document @@ term) AS matched, k.counted
    FROM catalog_image i, (
        SELECT (SELECT glimpse_any(term) FROM unnest(terms) term) && !!(SELECT glimpse_any(term) FROM unnest(excluded) term) AS query,
               terms, (SELECT count(*) FROM unnest(terms) term WHERE numnode(term) > 0) AS counted FROM (
            SELECT ARRAY(SELECT glimpse_to_tsquery('glimpse', term) FROM unnest(%s::text[]) term) AS terms,
                   ARRAY(SELECT glimpse_to_tsquery('glimpse', term) FROM unnest(%s::text[]) term) AS excluded
        ) parsed
    ) k
    WHERE i.search_document @@ k.query
    ORDER BY matched DESC, relevance DESC, i.id
    LIMIT %s
) candidates
UNION ALL

SELECT image_id, row_number() OVER (ORDER BY matched DESC, image_id) AS rank,
       0.5 * matched::numeric / counted AS weight FROM (
    SELECT i.id AS image_id, cardinality(t.terms) AS counted,
           (SELECT count(*) FROM unnest(t.terms) term WHERE glimpse_word_found(term, glimpse_words(i.picture_text))) AS matched
    FROM catalog_image i, (SELECT glimpse_words(%s) AS terms) t
    WHERE i.picture_word_keys && (SELECT array_agg(key) FROM unnest(glimpse_words(%s)) term, unnest(glimpse_term_keys(term)) key)
      AND NOT i.search_document @@ (SELECT glimpse_any(glimpse_to_tsquery('glimpse', term)) FROM unnest(%s::text[]) term)
    ORDER BY matched DESC, i.id
    LIMIT %s
) candidates
WHERE matched > 0
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
