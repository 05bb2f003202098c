"""Uploaded query pictures, kept for a while in Redis so that their results can be paged:
the next page names the picture by its content hash instead of uploading it again. Only
the CNN features (per model version) and the small preview are kept, never the upload."""
import re

import numpy as np
from django.conf import settings
from django.core.cache import caches

CACHE = "query_pictures"
KEY = re.compile(r"\A[0-9a-f]{64}\Z")  # a sha256 of the upload's bytes, as catalog/imaging.py computes it


def query_picture_keep(*, key: str, version_id: int, features: np.ndarray) -> None:
    caches[CACHE].set(f"features:{version_id}:{key}", np.asarray(features, dtype=np.float32), settings.GLIMPSE_QUERY_PICTURE_SECONDS)


def query_picture_preview_keep(*, key: str, preview: str) -> None:
    caches[CACHE].set(f"preview:{key}", preview, settings.GLIMPSE_QUERY_PICTURE_SECONDS)


def query_picture_features(*, key: str, version_id: int) -> np.ndarray | None:
    return caches[CACHE].get(f"features:{version_id}:{key}")


def query_picture_preview(*, key: str) -> str:
    return caches[CACHE].get(f"preview:{key}", "")
