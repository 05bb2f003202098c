"""A fixture that fails a test instead of letting it hang (a FIFO used to block open() for ever)."""
import signal

import pytest

TEST_SECONDS = 120


@pytest.fixture
def timeout():
    def expire(signum, frame):
        raise TimeoutError(f"the test ran over {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
