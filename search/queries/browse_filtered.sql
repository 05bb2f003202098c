-- browse_filtered: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.
-- $1: 'animals'
-- $2: 'animals'
-- $3: ['cat']
-- $4: datetime.date(2024, 3, 1)
-- $5: datetime.date(2024, 3, 31)
-- $6: 100
SELECT i.id FROM catalog_image i
WHERE true AND (i.category = %s OR starts_with(i.category, %s || '/')) AND i.tags @> %s AND i.created_at >= %s AND i.created_at < %s::date + 1
ORDER BY i.created_at DESC, i.id DESC
LIMIT %s
