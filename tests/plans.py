from django.db import transaction

from search.ranking import configure_index_scans, fused_ranking_sql
from search.sql import search_cursor


def ranking_plan(**query) -> str:
    """EXPLAIN of the search's ranking statement, as the search runs it."""
    sql, params = fused_ranking_sql(**query)
    with transaction.atomic(), search_cursor() as cursor:
        configure_index_scans(cursor)
        # A handful of test rows is cheaper to scan and sort than to walk an index; take
        # those choices away from the planner, as a catalog of real size does.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())
