"""pytest plugin: a real redis-server for the test session and an empty Redis database per test.

Loaded by the main conftest (``pytest_plugins``).

- ``redis_server`` (session): starts one RedisServer (tests/servers/redis.py, well under a second) and stops it by
  pid at the end, or uses the server named by BRUCKEN_TEST_REDIS_URL. If the server cannot start, every test that
  needs it fails with the reason; nothing is skipped.
- ``redis_url`` (function): the URL of the server's database, emptied (FLUSHDB) before and after the test, so that
  no queued job, lock or schedule of one test reaches the next.

Tests that use these fixtures get the ``redis`` marker, so ``-m "not redis"`` leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers.fixtures import started_or_failed
from tests.servers.redis import RedisServer, server_from_environment

REDIS_FIXTURES = ("redis_server", "redis_url")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in REDIS_FIXTURES):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """The Redis server for this test session (started once, stopped by pid at the end)."""
    external = server_from_environment()
    if external is not None:
        yield external
        return
    yield from started_or_failed(RedisServer())


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def redis_url(redis_server: Any) -> Iterator[str]:
    """The URL of an empty Redis database on the session's server; emptied again after the test."""
    url = str(redis_server.url)
    problem = ""
    try:
        _flush(url)
    except Exception as exc:  # any client error means the same: this test has no Redis to work with
        problem = f"cannot empty the test Redis database {url}: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    yield url
    _flush(url)
