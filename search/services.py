import dataclasses
import time

from django.conf import settings

from catalog.exceptions import InvalidImage
from catalog.imaging import check_image
from embeddings.selectors import version_active, version_base
from embeddings.spaces import space_for

from .exceptions import InvalidQuery
from .forms import SearchForm
from .judgments import judged_queries_embed
from .models import QueryLog
from .selectors import Results, image_search, stored_vectors

COLLAPSE_DISTANCE = 0.02


def search_run(*, form: SearchForm, default_limit: int) -> Results:
    """Run a validated search form (text, uploaded picture or "more like this") and log it."""
    started = time.perf_counter()
    data = form.cleaned_data
    version = version_active()
    limit = data.get("limit") or default_limit
    page = data.get("page") or 1
    mode = data.get("mode") or "hybrid"
    text = data.get("q") or ""
    vector = features = None
    log = {"kind": QueryLog.Kind.TEXT, "text": text}
    exclude_id = None
    if data.get("image"):
        content = data["image"].read(settings.GLIMPSE_MAX_UPLOAD_BYTES + 1)
        try:
            checked = check_image(
                content,
                max_bytes=settings.GLIMPSE_MAX_UPLOAD_BYTES,
                max_pixels=settings.GLIMPSE_MAX_PIXELS,
                max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO,
            )
        except InvalidImage as error:
            raise InvalidQuery(f"the uploaded picture cannot be used: {error}") from None
        features = space_for(version).embed_images([checked.rgb]).features[0]
        mode, text = "semantic", ""
        log = {"kind": QueryLog.Kind.IMAGE, "image_hash": checked.content_hash}
    elif data.get("like"):
        stored = stored_vectors(image_id=data["like"], version=version)
        if stored is None:
            raise InvalidQuery("that image has no vectors yet; try again once it is embedded")
        vector, features = stored
        if features is not None:
            # Looks alike, not "is described alike": the bridge vector is weak picture-to-picture.
            vector = None
        mode, text, exclude_id = "semantic", "", data["like"]
        log = {"kind": QueryLog.Kind.SIMILAR, "similar_to_id": data["like"]}
    if text and mode != "keyword":
        # Queries judged since the last search get their vectors now, so they count at once.
        judged_queries_embed(encode=space_for(version_base()).embed_texts)
    results = image_search(
        text=text,
        vector=vector,
        features=features,
        mode=mode,
        filters=form.filters(),
        limit=limit,
        offset=(page - 1) * limit,
        collapse_distance=COLLAPSE_DISTANCE if data.get("collapse") else None,
        exclude_id=exclude_id,
        include_distant=bool(data.get("distant")),
        version=version,
    )
    results.latency_ms = (time.perf_counter() - started) * 1000
    QueryLog.objects.create(
        **log,
        mode=mode,
        filters={key: str(value) for key, value in dataclasses.asdict(form.filters()).items() if value},
        result_ids=results.image_ids,
        total=results.total,
        nearest_only=results.nearest_only,
        offset=results.offset,
        latency_ms=results.latency_ms,
        version=version,
    )
    return results


