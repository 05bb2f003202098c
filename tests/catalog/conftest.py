import pytest

from tests.timeouts import timeout  # noqa: F401


@pytest.fixture(autouse=True)
def every_test_has_a_timeout(timeout):
    """Hostile files must never hang the import."""
