"""The encoders are built once per process, even when a threaded web worker's threads all ask at once."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from embeddings.encoders import built_once


def test_threads_asking_at_once_wait_for_one_build():
    builds = []
    start = threading.Barrier(8)

    @built_once
    def model():
        builds.append(threading.get_ident())
        time.sleep(0.2)  # a load slow enough for the other threads to arrive meanwhile
        return object()

    def ask(_):
        start.wait(timeout=10)
        return model()

    with ThreadPoolExecutor(max_workers=8) as pool:
        models = list(pool.map(ask, range(8)))
    assert len(builds) == 1
    assert all(found is models[0] for found in models)
    assert model() is models[0]
