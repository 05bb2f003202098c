-- judged_list_multilingual_filtered: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: Vector(384)
-- $2: 0.030000000000000027
-- $3: 'animals'
-- $4: 'animals'
-- $5: ['cat']
-- $6: datetime.date(2024, 3, 1)
-- $7: datetime.date(2024, 3, 31)
WITH query AS MATERIALIZED (SELECT %s::vector AS vector)
SELECT image_id, max(similarity) AS similarity, max(grade) AS grade, count(DISTINCT curator_id) AS curators FROM (
    SELECT j.image_id, j.curator_id, q.similarity, avg(j.grade) OVER (PARTITION BY q.query_key, j.image_id) AS grade
    FROM (
        SELECT query_key, 1 - (multilingual_vector <=> (SELECT vector FROM query)) AS similarity
        FROM search_judgedquery WHERE multilingual_vector <=> (SELECT vector FROM query) <= %s
    ) q
    JOIN search_relevancejudgment j ON j.query_key = q.query_key AND j.is_current
    JOIN catalog_image i ON i.id = j.image_id
    WHERE true AND (i.category = %s OR starts_with(i.category, %s || '/')) AND i.tags @> %s AND i.created_at >= %s AND i.created_at < %s::date + 1
) graded
GROUP BY image_id
ORDER BY similarity DESC, grade DESC, image_id
