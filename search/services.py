import dataclasses
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.sql import InsertQuery
from django.template.defaultfilters import pluralize

from catalog.decode_slots import decode_slots
from catalog.exceptions import InvalidImage
from catalog.imaging import check_image, size_over_limit
from catalog.models import Image
from embeddings.selectors import version_active
from embeddings.spaces import space_for

from .exceptions import EmptyQuery, InvalidQuery, QueryImageNotFound, QueryPictureExpired, UploadTooLarge
from .models import QueryLog
from .query_pictures import query_picture_features, query_picture_keep
from .selectors import BROWSE_MODE, Filters, Results, depth_check, image_search, images_browse, stored_vectors

COLLAPSE_DISTANCE = 0.02


@dataclass(frozen=True, kw_only=True)
class SearchQuery:
    """A search as asked, from the site's form or the API; search_run decides how its parts combine."""

    text: str = ""
    picture: UploadedFile | None = None
    picture_key: str = ""  # an earlier upload's content hash, for its next pages (search/query_pictures.py)
    like: int | None = None
    mode: str = ""  # hybrid, or semantic for a picture alone
    filters: Filters = Filters()
    page: int = 1
    limit: int = 20
    collapse: bool = False
    include_distant: bool = False
    show_hidden: bool = False  # a curator's search: pictures hidden from visitors by curators' grades stay, marked


def search_mode(*, query: SearchQuery, text: str) -> str:
    """The mode the query runs in, or InvalidQuery: no part of a query is dropped silently.
    Filters alone browse: what they let through, newest first."""
    has_picture = bool(query.picture or query.picture_key or query.like)
    if not (text or has_picture or query.filters):
        raise EmptyQuery("Type something to search for, upload a picture, or pick “more like this”.")
    filters = query.filters
    if filters.created_from and filters.created_to and filters.created_from > filters.created_to:
        raise InvalidQuery(
            f"the dates are the wrong way round: from {filters.created_from.isoformat()} is after to "
            f"{filters.created_to.isoformat()}; swap them"
        )
    if not (text or has_picture):
        return BROWSE_MODE
    if (query.picture or query.picture_key) and query.like:
        raise InvalidQuery("search by an uploaded picture or by “more like this”, not both at once")
    if query.picture and query.picture_key:
        raise InvalidQuery("upload a picture or name an earlier upload (picture), not both at once")
    if has_picture and query.mode == "keyword":
        raise InvalidQuery("keyword mode matches words only and cannot use a picture; choose hybrid or semantic, or leave the picture out")
    if has_picture and not text:
        return "semantic"  # a picture has no words to match
    return query.mode or "hybrid"


def query_picture(*, query: SearchQuery, version) -> tuple:
    """(CNN features, key) of the picture searched by, uploaded now or kept from an earlier
    page; (None, "") when there is none."""
    if query.picture:
        features, key = uploaded_features(picture=query.picture, version=version)
        query_picture_keep(key=key, version_id=version.id, features=features)
        return features, key
    if query.picture_key:
        features = query_picture_features(key=query.picture_key, version_id=version.id)
        if features is None:
            hours = settings.GLIMPSE_QUERY_PICTURE_SECONDS / 3600
            raise QueryPictureExpired(f"the picture you searched by is kept for {hours:g} hour{pluralize(hours)} only; upload it again")
        return features, query.picture_key
    return None, ""


def liked_vectors(*, image_id: int, text: str, version) -> tuple:
    """(text-space vector, CNN features) that "more like this" ranks by: one of the two."""
    stored = stored_vectors(image_id=image_id, version=version)
    if stored is None:
        if not Image.objects.filter(id=image_id).exists():
            raise QueryImageNotFound(f"no image {image_id}")
        raise InvalidQuery("that image has no vectors yet; try again once it is embedded")
    vector, features = stored
    if features is not None:
        # Looks alike, not "is described alike": the bridge vector is weak picture-to-picture.
        return None, features
    if text:
        raise InvalidQuery(f"image {image_id} has no picture features yet, so it cannot be combined with words; search by either alone")
    return vector, None


def search_run(*, query: SearchQuery, log_query: bool = True) -> Results:
    """Run a search (words, an uploaded picture or "more like this", or words with either:
    their ranked lists are fused in one ranking) and log it, unless it is not a visitor's
    search (`log_query` false: the page a curator's grade returns to)."""
    started = time.perf_counter()
    text = " ".join(query.text.split())
    mode = search_mode(query=query, text=text)
    offset = (query.page - 1) * query.limit
    depth_check(offset=offset)  # before any model runs
    version = version_active()
    if mode == BROWSE_MODE:
        # Nothing was asked for, so nothing goes to the query log (its analytics are of searches).
        return images_browse(filters=query.filters, limit=query.limit, offset=offset, version=version)
    features, picture_key = query_picture(query=query, version=version)
    vector = exclude_id = None
    log = {"kind": QueryLog.Kind.TEXT, "text": text}
    if picture_key:
        log = {"kind": QueryLog.Kind.IMAGE, "text": text, "image_hash": picture_key}
    elif query.like:
        vector, features = liked_vectors(image_id=query.like, text=text, version=version)
        exclude_id = query.like
        log = {"kind": QueryLog.Kind.SIMILAR, "text": text, "similar_to_id": query.like}
    results = image_search(
        text=text,
        vector=vector,
        features=features,
        mode=mode,
        filters=query.filters,
        limit=query.limit,
        offset=offset,
        collapse_distance=COLLAPSE_DISTANCE if query.collapse else None,
        exclude_id=exclude_id,
        include_distant=query.include_distant,
        show_hidden=query.show_hidden,
        version=version,
    )
    results.latency_ms = (time.perf_counter() - started) * 1000
    results.picture = picture_key
    if not log_query:
        return results
    query_log_write(
        **log,
        mode=mode,
        filters={key: str(value) for key, value in dataclasses.asdict(query.filters).items() if value},
        result_ids=results.image_ids,
        total=results.total,
        nearest_only=results.nearest_only,
        offset=results.offset,
        latency_ms=results.latency_ms,
        version=version,
    )
    return results


def uploaded_features(*, picture: UploadedFile, version) -> tuple:
    """(CNN features, content hash) of an uploaded query picture, or why it cannot be used."""
    limit = settings.GLIMPSE_MAX_UPLOAD_BYTES
    if picture.size > limit:
        raise UploadTooLarge(f"the uploaded picture cannot be used: {size_over_limit(picture.size, limit)}")
    try:
        with decode_slots.slot():
            checked = check_image(
                picture.read(limit + 1),
                max_bytes=limit,
                max_pixels=settings.GLIMPSE_MAX_PIXELS,
                max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO,
            )
    except InvalidImage as error:
        raise InvalidQuery(f"the uploaded picture cannot be used: {error}") from None
    return space_for(version).embed_images([checked.rgb]).features[0], checked.content_hash


def query_log_write(**fields) -> None:
    """One QueryLog row in one round trip, committed without waiting for the disk.

    The INSERT itself turns synchronous_commit off for its transaction (RETURNING runs
    before the commit that reads the setting): a crash may lose the last fraction of a
    second of the log, never catalog data, and the visitor waits neither for a WAL flush
    nor for the BEGIN, SET LOCAL and COMMIT that a transaction around it would cost."""
    sql, params = query_log_insert_sql(**fields)
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(f"{sql} RETURNING set_config('synchronous_commit', 'off', true)", params)


def query_log_insert_sql(**fields) -> tuple[str, list]:
    """The ORM's own INSERT of one QueryLog row, as (sql, params), without running it.

    InsertQuery is private Django API: the public ones (save, create, bulk_create) run the
    statement and cannot append the RETURNING above. It fills defaults and auto_now_add
    and adapts every value as the ORM does. tests/search/test_query_path.py checks the exact
    statement, so a Django upgrade that changes it fails there first."""
    query = InsertQuery(QueryLog)
    query.insert_values([field for field in QueryLog._meta.concrete_fields if not field.primary_key], [QueryLog(**fields)])
    ((sql, params),) = query.get_compiler(using=DEFAULT_DB_ALIAS).as_sql()
    return sql, list(params)
