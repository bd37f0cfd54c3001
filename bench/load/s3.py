"""``--storage s3``: the real Ceph radosgw of the test suite (tests/servers/radosgw.py), or the one named by
BRUCKEN_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY, with a fresh bucket removed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext


@contextmanager
def s3_bucket() -> Iterator[dict[str, str]]:
    """ARCHIVE_* settings (without the prefix) for a new bucket; `brucken init` creates it."""
    from tests.servers.fixtures import admin_client, empty_and_remove_bucket, new_bucket_name, s3_settings
    from tests.servers.radosgw import RadosGateway, server_from_environment

    external = server_from_environment()
    with nullcontext(external) if external is not None else RadosGateway() as server:
        bucket = new_bucket_name()
        try:
            yield {name: str(value) for name, value in s3_settings(server, bucket).items()}
        finally:
            empty_and_remove_bucket(admin_client(server), bucket)
