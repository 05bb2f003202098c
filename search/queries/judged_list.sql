-- judged_list: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: Vector(384)
-- $2: 0.09999999999999998
WITH query AS MATERIALIZED (SELECT %s::vector AS vector)
SELECT image_id, max(similarity) AS similarity, max(grade) AS grade, count(DISTINCT curator_id) AS curators FROM (
    SELECT j.image_id, j.curator_id, q.similarity, avg(j.grade) OVER (PARTITION BY q.query_key, j.image_id) AS grade
    FROM (
        SELECT query_key, 1 - (vector <=> (SELECT vector FROM query)) AS similarity
        FROM search_judgedquery WHERE vector <=> (SELECT vector FROM query) <= %s
    ) q
    JOIN search_relevancejudgment j ON j.query_key = q.query_key AND j.is_current
    JOIN catalog_image i ON i.id = j.image_id
    WHERE true
) graded
GROUP BY image_id
ORDER BY similarity DESC, grade DESC, image_id
