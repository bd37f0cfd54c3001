"""pytest plugin: a real S3 server (Ceph radosgw) for the session and a fresh bucket per test.

Load it from the main conftest with ``pytest_plugins = ["tests.servers.fixtures"]``.

- ``s3_server`` (session): starts one RadosGateway for the whole run (about 15 s) and stops it by pid at the
  end, or uses the server named by BRUCKEN_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY. If the server cannot
  start, every test that needs it fails with the reason; nothing is skipped.
- ``s3_config`` (function): a new empty bucket and the ARCHIVE-style settings dict that points at it
  (STORAGE="s3", S3_*); the bucket and everything in it is removed after the test.

- ``pg_server`` (session) and ``pg_url`` (function): a real PostgreSQL server (tests/servers/postgres.py) and a
  fresh empty database on it, dropped after the test; or the server named by BRUCKEN_TEST_PG_URL.

Tests that use these fixtures get the ``s3`` or ``postgres`` marker, so ``-m "not s3"`` leaves them out.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.servers.postgres import ENV_URL as PG_ENV_URL
from tests.servers.postgres import PostgresServer
from tests.servers.radosgw import RadosGateway, S3Server, server_from_environment

S3_FIXTURES = ("s3_server", "s3_config")
PG_FIXTURES = ("pg_server", "pg_url")
_SESSION = boto3.session.Session()  # caches the service models; used from the main thread only


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in S3_FIXTURES):
            item.add_marker(pytest.mark.s3)
        if any(name in getattr(item, "fixturenames", ()) for name in PG_FIXTURES):
            item.add_marker(pytest.mark.postgres)


def s3_settings(server: S3Server, bucket: str) -> dict[str, Any]:
    """ARCHIVE-style settings for the given server and bucket, with short timeouts for tests."""
    return {
        "STORAGE": "s3",
        "S3_ENDPOINT": server.endpoint,
        "S3_BUCKET": bucket,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY": server.access_key,
        "S3_SECRET_KEY": server.secret_key,
        "S3_ADDRESSING_STYLE": "path",
        "S3_CHECKSUM": "when_required",
        "S3_CONNECT_TIMEOUT": 3.0,
        "S3_READ_TIMEOUT": 30.0,
        "S3_MAX_ATTEMPTS": 3,
        "S3_MULTIPART_THRESHOLD": 8 * 1024 * 1024,
    }


def admin_client(server: S3Server) -> Any:
    """A plain boto3 client for test set-up and clean-up (not the code under test)."""
    return _SESSION.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            region_name="us-east-1",
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=3,
            read_timeout=30,
            retries={"mode": "standard", "total_max_attempts": 3},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def new_bucket_name() -> str:
    return f"brucken-test-{uuid.uuid4().hex[:20]}"


def empty_and_remove_bucket(client: Any, bucket: str) -> None:
    """Delete every object, unfinished multipart upload and the bucket itself; a missing bucket is fine."""
    with contextlib.suppress(ClientError):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    with contextlib.suppress(ClientError):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
    with contextlib.suppress(ClientError):
        client.delete_bucket(Bucket=bucket)


def started_or_failed(server: Any) -> Iterator[Any]:
    """For a session fixture: start ``server`` and yield it, stopping it by pid at the end; if it cannot start,
    the test fails with the server's reason (never a skip). The failure is raised outside the ``except`` so that
    it shows the reason, not a chained traceback."""
    problem = ""
    try:
        server.start()
    except RuntimeError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The S3 server for this test session (started once, stopped by pid at the end)."""
    problem = ""
    try:
        external = server_from_environment()
    except RuntimeError as exc:
        problem, external = str(exc), None
    if problem:
        pytest.fail(problem, pytrace=False)
    if external is not None:
        yield external
        return
    yield from started_or_failed(RadosGateway())


@pytest.fixture
def s3_config(s3_server: S3Server) -> Iterator[dict[str, Any]]:
    """Settings for a fresh, empty, private bucket on the session's S3 server; removed after the test."""
    client = admin_client(s3_server)
    bucket = new_bucket_name()
    problem = ""
    try:
        client.create_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as exc:
        problem = f"cannot create the test bucket {bucket} on {s3_server.endpoint}: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield s3_settings(s3_server, bucket)
    finally:
        empty_and_remove_bucket(client, bucket)
        client.close()


class _ExternalPostgres:
    """A PostgreSQL server someone else runs (BRUCKEN_TEST_PG_URL); databases are made and dropped on it."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self._url = make_url(url)

    def url(self, database: str) -> str:
        return self._url.set(database=database).render_as_string(hide_password=False)

    def _admin(self) -> Any:
        from sqlalchemy import create_engine

        return create_engine(self._url, isolation_level="AUTOCOMMIT")

    def create_database(self) -> str:
        from sqlalchemy import text

        name = f"test_{uuid.uuid4().hex[:12]}"
        engine = self._admin()
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self._url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, name: str) -> None:
        from sqlalchemy import text

        engine = self._admin()
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """The PostgreSQL server for this test session (started once, stopped by pid at the end)."""
    import os

    external = os.environ.get(PG_ENV_URL, "").strip()
    if external:
        yield _ExternalPostgres(external)
        return
    yield from started_or_failed(PostgresServer())


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """The URL of a new, empty database on the session's PostgreSQL server; dropped after the test."""
    from sqlalchemy.engine import make_url

    url = pg_server.create_database()
    yield url
    pg_server.drop_database(str(make_url(url).database))
