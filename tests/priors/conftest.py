"""Prior tests run single-threaded on the session's tiny models (tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield
