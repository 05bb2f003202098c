"""The query picture of an upload search, shown back to the visitor without storing it."""
import base64

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from catalog.decode_slots import decode_slots
from catalog.exceptions import InvalidImage
from catalog.imaging import decode, thumbnail_bytes

PREVIEW_SIZE = 160


def upload_preview(*, upload: UploadedFile) -> str:
    """A data: URL of a small thumbnail of `upload` (a few KB whatever the upload's size),
    or "" when it cannot be decoded; the raw upload is never echoed into the page."""
    if upload.size > settings.GLIMPSE_MAX_UPLOAD_BYTES:
        return ""
    with decode_slots.slot():
        upload.seek(0)
        content = upload.read(settings.GLIMPSE_MAX_UPLOAD_BYTES + 1)
        if len(content) > settings.GLIMPSE_MAX_UPLOAD_BYTES:
            return ""
        try:
            decoded = decode(content, max_pixels=settings.GLIMPSE_MAX_PIXELS, max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO)
        except InvalidImage:
            return ""
        thumbnail = thumbnail_bytes(decoded.rgb, size=PREVIEW_SIZE)
    return "data:image/webp;base64," + base64.b64encode(thumbnail).decode("ascii")
