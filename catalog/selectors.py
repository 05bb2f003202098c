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


@dataclass(frozen=True)
class CategoryPath:
    path: str  # what the category filter takes: "animals/big_cats"
    depth: int  # 0 for a top-level category

    @property
    def label(self) -> str:
        return category_label(self.path)

    @property
    def name(self) -> str:
        """The last part, readable: "big cats"; a sub-category named as its parent
        (openclipart's "animals/animals", the pictures filed under no narrower one) is "other"."""
        parts = self.path.split("/")
        return "other" if len(parts) > 1 and parts[-1] == parts[-2] else parts[-1].replace("_", " ")


def category_label(path: str) -> str:
    """A category path as people read it: "signs and symbols › other", not "signs_and_symbols/signs_and_symbols"."""
    return " › ".join(CategoryPath(path="/".join(path.split("/")[: depth + 1]), depth=depth).name for depth in range(path.count("/") + 1))


def category_paths() -> list[CategoryPath]:
    """Every category and each of its parents ("animals" for "animals/housecats"), each
    parent followed by its sub-categories."""
    paths = Image.objects.exclude(category="").values_list("category", flat=True).distinct()
    nested = {tuple(parts[:depth]) for parts in (path.split("/") for path in paths) for depth in range(1, len(parts) + 1)}
    return [CategoryPath(path="/".join(parts), depth=len(parts) - 1) for parts in sorted(nested)]


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
