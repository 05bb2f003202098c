from django.db import migrations

# The search document for a multilingual catalog. Words go through the project's text
# search configuration `glimpse`, made here as a copy of english and then kept mapped
# like GLIMPSE_TEXT_SEARCH_LANGUAGE (catalog/text_search.py). Chinese and Japanese are
# written without spaces between words, so the parser reads a whole run of them as one
# word and no part of it can be found: runs of CJK characters are indexed instead as their
# bigrams, then their single characters, through the simple configuration (no stemming,
# no stop words, whatever the catalog's language). A query term that holds such a run
# becomes the phrase of its bigrams (one character: that character), which only the same
# run of characters matches. Korean puts spaces between words but attaches particles to
# them (고양이가, "the cat" as subject); its syllables are indexed the same way, so 고양이
# finds 고양이가. With no morphological analysis, a Korean or Japanese word whose syllables
# change when inflected is not found from its dictionary form.
#
# Both sides read text in NFKC first, so half-width katakana, full-width Latin letters
# and most CJK compatibility ideographs meet their usual forms.
#
# The functions have SQL-standard bodies (BEGIN ATOMIC): resolved once, here, so the
# generated column computes the same under any search_path, pg_dump's empty one included.
CJK = (
    r"["
    r"\u1100-\u11FF\uA960-\uA97F\uD7B0-\uD7FF\u3131-\u318E"  # Hangul jamo, extended A and B, compatibility jamo
    r"\uAC00-\uD7A3"  # Hangul syllables
    r"\u3041-\u3096\u309D-\u309F"  # hiragana and its iteration marks (not the combining voicing marks)
    r"\u30A1-\u30FA\u30FC-\u30FF\u31F0-\u31FF"  # katakana with ー, not the ・ that separates words
    r"\u3005-\u3007"  # 々 〆 〇
    r"\u3400-\u4DBF\u4E00-\u9FFF"  # CJK unified ideographs, extension A
    r"\uF900-\uFAFF"  # CJK compatibility ideographs (the few that NFKC keeps)
    r"\U00020000-\U000323AF"  # extensions B to H, compatibility supplement
    r"]+"
)

FUNCTIONS = rf"""
CREATE TEXT SEARCH CONFIGURATION glimpse (COPY = english);

-- tsquery's && and || over any number of queries; an empty query leaves the other as it is.
CREATE AGGREGATE glimpse_all(tsquery) (SFUNC = tsquery_and, STYPE = tsquery, INITCOND = '');
CREATE AGGREGATE glimpse_any(tsquery) (SFUNC = tsquery_or, STYPE = tsquery, INITCOND = '');

-- 'ab bc cd' for the run 'abcd'; '' for a single character.
CREATE FUNCTION glimpse_cjk_bigrams(run text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
BEGIN ATOMIC
    SELECT coalesce(string_agg(substr(run, n, 2), ' ' ORDER BY n), '') FROM generate_series(1, length(run) - 1) n;
END;

-- Each CJK run of a text as its bigrams, then its characters: 'ab bc a b c' for 'abc'. A
-- run's bigrams take consecutive positions, so a phrase of bigrams matches inside one run
-- only: the characters after them keep the next run's bigrams from following on.
CREATE FUNCTION glimpse_cjk_grams(body text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
BEGIN ATOMIC
    SELECT coalesce(string_agg(glimpse_cjk_bigrams(run[1]) || ' ' || regexp_replace(run[1], '(.)', '\1 ', 'g'), ' ' ORDER BY number), '')
    FROM regexp_matches(body, '{CJK}', 'g') WITH ORDINALITY AS runs(run, number);
END;

-- A text's words in `config` followed by its CJK grams.
CREATE FUNCTION glimpse_to_tsvector(config regconfig, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
BEGIN ATOMIC
    SELECT to_tsvector(config, regexp_replace(normalized, '{CJK}', ' ', 'g')) || to_tsvector('simple', glimpse_cjk_grams(normalized))
    FROM normalize(body, NFKC) normalized;
END;

-- One query term in websearch syntax (a word or a "quoted phrase"): its words in `config`
-- and each of its CJK runs as the phrase of its bigrams, all of them required.
CREATE FUNCTION glimpse_to_tsquery(config regconfig, term text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
BEGIN ATOMIC
    SELECT websearch_to_tsquery(config, regexp_replace(normalized, '{CJK}', ' ', 'g')) && (
        SELECT glimpse_all(phraseto_tsquery('simple', coalesce(nullif(glimpse_cjk_bigrams(run[1]), ''), run[1])))
        FROM regexp_matches(normalized, '{CJK}', 'g') run
    )
    FROM normalize(term, NFKC) normalized;
END;
"""
DROP_FUNCTIONS = """
DROP FUNCTION glimpse_to_tsquery(regconfig, text);
DROP FUNCTION glimpse_to_tsvector(regconfig, text);
DROP FUNCTION glimpse_cjk_grams(text);
DROP FUNCTION glimpse_cjk_bigrams(text);
DROP AGGREGATE glimpse_any(tsquery);
DROP AGGREGATE glimpse_all(tsquery);
DROP TEXT SEARCH CONFIGURATION glimpse;
"""

# Title A, description and tags B, the category's words C, as in 0003. A generated
# column's expression cannot be altered on every supported PostgreSQL, so the column and
# its index are rebuilt.
DOCUMENT = """
    setweight(glimpse_to_tsvector('glimpse', coalesce(title, '')), 'A') ||
    setweight(glimpse_to_tsvector('glimpse', coalesce(description, '')), 'B') ||
    setweight(glimpse_to_tsvector('glimpse', glimpse_tags_text(tags::text[])), 'B') ||
    setweight(glimpse_to_tsvector('glimpse', translate(coalesce(category, ''), '/_-', '   ')), 'C')
"""
ENGLISH_DOCUMENT = """
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') ||
    setweight(to_tsvector('english'::regconfig, glimpse_tags_text(tags::text[])), 'B') ||
    setweight(to_tsvector('english'::regconfig, translate(coalesce(category, ''), '/_-', '   ')), 'C')
"""
REBUILD = """
ALTER TABLE catalog_image DROP COLUMN search_document;
ALTER TABLE catalog_image ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({document}) STORED;
CREATE INDEX catalog_image_search_document_gin ON catalog_image USING gin (search_document);
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_search_document_category")]
    operations = [
        migrations.RunSQL(
            FUNCTIONS + REBUILD.format(document=DOCUMENT),
            REBUILD.format(document=ENGLISH_DOCUMENT) + DROP_FUNCTIONS,
        )
    ]
