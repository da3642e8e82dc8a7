"""Fixtures shared by the whole test suite."""

from collections.abc import Iterator

import pytest

from tests.redis_server import disposable_redis, redis_server, redis_url
from tests.servers import close_sdk_clients

__all__ = ["disposable_redis", "redis_server", "redis_url"]


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """SDK clients made by the tests close their connections, so no socket is left to the garbage collector."""
    yield
    close_sdk_clients()
