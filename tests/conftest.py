"""Fixtures shared by the whole test suite."""

from tests.redis_server import disposable_redis, redis_server, redis_url

__all__ = ["disposable_redis", "redis_server", "redis_url"]
