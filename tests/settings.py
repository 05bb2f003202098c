"""The real settings, with the queue on its own Redis database and media in a scratch folder,
so that a test run never touches the demo catalog (its database is test_glimpse)."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL

TEST_REDIS_URL = REDIS_URL.replace("db=0", "db=15") if "db=0" in REDIS_URL else REDIS_URL.rstrip("/") + "/15"
RQ_QUEUES = {name: {"URL": TEST_REDIS_URL, "DEFAULT_TIMEOUT": 600} for name in ("embeddings", "reading", "training")}
CACHES = CACHES | {"query_pictures": CACHES["query_pictures"] | {"LOCATION": TEST_REDIS_URL}}  # noqa: F405
if os.environ.get("GLIMPSE_TEST_MEDIA"):
    MEDIA_ROOT = Path(os.environ["GLIMPSE_TEST_MEDIA"])  # a process a test started shares the test's files
else:
    MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="glimpse-test-media-"))
    # Gone when the run ends, on an error and on Ctrl-C too (they unwind through atexit).
    atexit.register(shutil.rmtree, MEDIA_ROOT, ignore_errors=True)
GLIMPSE_EMBED_BATCH_SIZE = 4
GLIMPSE_SERVE_MEDIA = True
# Static files straight from the apps, looked up per request: no collectstatic before a run.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = True

# A worker started by a test joins that test's database.
if os.environ.get("GLIMPSE_TEST_DATABASE"):
    DATABASES["default"]["NAME"] = os.environ["GLIMPSE_TEST_DATABASE"]  # noqa: F405

# A second alias on the same test database, as a read replica would be (the router tests
# turn it on with GLIMPSE_READ_REPLICAS; without that setting nothing reads from it).
DATABASES["replica"] = DATABASES["default"] | {"TEST": {"MIRROR": "default"}}  # noqa: F405
