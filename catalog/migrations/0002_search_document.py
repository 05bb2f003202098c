from django.db import migrations

# Full-text document over title (weight A), description and tags (weight B), kept by
# PostgreSQL itself so that every write path, admin edits included, stays in sync.
# array_to_string is only STABLE; tags are plain text, so the wrapper may be IMMUTABLE.
FORWARD = """
CREATE FUNCTION glimpse_tags_text(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$;
ALTER TABLE catalog_image ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') ||
    setweight(to_tsvector('english'::regconfig, glimpse_tags_text(tags::text[])), 'B')
) STORED;
CREATE INDEX catalog_image_search_document_gin ON catalog_image USING gin (search_document);
"""
BACKWARD = """
ALTER TABLE catalog_image DROP COLUMN search_document;
DROP FUNCTION glimpse_tags_text(text[]);
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
