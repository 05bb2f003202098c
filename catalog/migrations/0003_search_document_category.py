from django.db import migrations

# Categories are paths ("animals/housecats"); their words join the full-text document
# (weight C: below the title, above nothing) so "housecats" finds the category's images.
# A generated column's expression cannot be altered on every supported PostgreSQL, so
# the column and its index are rebuilt.
DOCUMENT = """
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') ||
    setweight(to_tsvector('english'::regconfig, glimpse_tags_text(tags::text[])), 'B'){category}
"""
CATEGORY = """ ||
    setweight(to_tsvector('english'::regconfig, translate(coalesce(category, ''), '/_-', '   ')), 'C')"""
REBUILD = """
ALTER TABLE catalog_image DROP COLUMN search_document;
ALTER TABLE catalog_image ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({document}) STORED;
CREATE INDEX catalog_image_search_document_gin ON catalog_image USING gin (search_document);
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_search_document")]
    operations = [
        migrations.RunSQL(
            REBUILD.format(document=DOCUMENT.format(category=CATEGORY)),
            REBUILD.format(document=DOCUMENT.format(category="")),
        )
    ]
