"""gunicorn settings for `make demo` and production: `gunicorn -c config/gunicorn.py config.wsgi`.

Threaded workers (gthread): searches wait on PostgreSQL and release the GIL inside torch,
so a few threads per process keep the cores busy with one copy of the encoders per
process. Sizes follow the CPU count; GLIMPSE_WEB_WORKERS / GLIMPSE_WEB_THREADS override.
Measured on 2 cores (docs/throughput.md, "Load"): 2 × 4 with torch's own thread count served twice
the requests of the same with OMP_NUM_THREADS=1, and as many as 1 × 8.
"""
import os

bind = os.environ.get("GLIMPSE_WEB_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("GLIMPSE_WEB_WORKERS", os.cpu_count() or 1))
threads = int(os.environ.get("GLIMPSE_WEB_THREADS", 4))
# Each worker loads the text encoders before it takes a request (post_worker_init below);
# uploads are read whole.
timeout = int(os.environ.get("GLIMPSE_WEB_TIMEOUT", 120))
graceful_timeout = 20
# Connections wait in the listen queue rather than being refused when every thread is busy.
backlog = 2048
accesslog = os.environ.get("GLIMPSE_WEB_ACCESS_LOG") or None
# gunicorn 27's control socket is one path per user ($HOME/.gunicorn): two servers would share it.
control_socket_disable = True

# Each worker thread lives as long as the worker, so a persistent connection per thread is
# bounded (workers × threads in all) and saves a connect per request. Read by
# config/settings.py, which each worker imports after this file ran in the master.
os.environ.setdefault("GLIMPSE_DB_CONN_MAX_AGE", "60")


def post_worker_init(worker):
    """Load the text encoders in each worker, after the fork and before its first request:
    otherwise the first search of every worker waits for them (~0.5 s against 16 ms warm).
    manage.py commands never load them unless they encode."""
    import time

    from embeddings.encoders import query_encoders_load

    started = time.monotonic()
    try:
        query_encoders_load()
    except Exception as error:  # noqa: BLE001 - the worker still serves; the first search will say what is wrong
        worker.log.warning("glimpse: text encoders not loaded at start (%s); the first search will try again", error)
    else:
        worker.log.info("glimpse: text encoders ready in %.1f s", time.monotonic() - started)
