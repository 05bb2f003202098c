"""Catalog reads for browsing: what a visitor can start from before typing anything."""
from dataclasses import dataclass

from django.db import connection

from .models import Image


@dataclass(frozen=True)
class CategoryCount:
    name: str  # a top-level category, e.g. "animals" for "animals/housecats"
    count: int

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


def images_recent(*, limit: int) -> list[Image]:
    return list(Image.objects.order_by("-created_at", "-id")[:limit])


def category_paths() -> list[str]:
    """Every category and each of its parents ("animals" for "animals/housecats"), sorted."""
    paths = Image.objects.exclude(category="").values_list("category", flat=True).distinct()
    return sorted({"/".join(parts[:depth]) for parts in (path.split("/") for path in paths) for depth in range(1, len(parts) + 1)})


CATEGORIES_TOP_SQL = """
SELECT split_part(category, '/', 1) AS name, count(*) AS images
FROM catalog_image
WHERE category <> ''
GROUP BY name
ORDER BY images DESC, name
"""


def categories_top() -> list[CategoryCount]:
    """Top-level categories with how many images each holds (its sub-categories included)."""
    with connection.cursor() as cursor:
        cursor.execute(CATEGORIES_TOP_SQL)
        return [CategoryCount(name=name, count=count) for name, count in cursor.fetchall()]


EXAMPLE_TAGS_SQL = """
WITH top AS (SELECT DISTINCT split_part(category, '/', 1) AS name FROM catalog_image WHERE category <> '')
SELECT tag
FROM catalog_image, unnest(tags) AS tag
WHERE tag ~ '^[[:alpha:]][[:alpha:] -]*$'
  AND tag NOT IN (SELECT name FROM top) AND tag || 's' NOT IN (SELECT name FROM top)
GROUP BY tag
HAVING count(*) >= 2
ORDER BY count(*) DESC, tag
LIMIT %s
"""


def tags_for_examples(*, limit: int) -> list[str]:
    """The most used plain-word tags (on two images or more) that say more than a
    top-level category's name does ("apple", not "food" or "animal" next to "animals")."""
    with connection.cursor() as cursor:
        cursor.execute(EXAMPLE_TAGS_SQL, [limit])
        return [tag for (tag,) in cursor.fetchall()]
