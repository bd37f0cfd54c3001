"""Contract tests for archive.storage: the same tests run against LocalStore and against S3Store on a real
Ceph RADOS Gateway (started once per session by tests/servers/fixtures.py), plus S3-only failure tests."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from archive.errors import ArchiveError
from archive.storage import (
    LocalStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StorageError,
    StorageUnavailable,
    content_key,
    make_store,
)
from tests.servers.fixtures import admin_client, empty_and_remove_bucket, new_bucket_name

MB = 1024 * 1024
SHA = "ab" + "cd" + "0123456789abcdef" * 3 + "0123456789ab"


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as stream:
        return stream.read()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        made = make_store({"STORAGE": "local", "LOCAL_STORE_DIR": str(tmp_path / "store")})
        assert isinstance(made, LocalStore)
    else:
        made = make_store(request.getfixturevalue("s3_config"))
        assert isinstance(made, S3Store)
        made.ensure_bucket()
    made.check()
    return made


# -- the contract, for every backend ------------------------------------------------------------------------


def test_a_store_satisfies_the_protocol(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


def test_put_bytes_then_read_back_byte_for_byte(store: ObjectStore) -> None:
    data = random_bytes(300_000) + b"\x00\xff\r\n"
    store.put_bytes("derivatives/ab/x/thumb.jpg", data, "image/jpeg")

    assert read_all(store, "derivatives/ab/x/thumb.jpg") == data
    assert b"".join(store.iter_chunks("derivatives/ab/x/thumb.jpg")) == data
    assert store.stat("derivatives/ab/x/thumb.jpg").size == len(data)
    assert store.exists("derivatives/ab/x/thumb.jpg")


def test_put_file_then_stream_in_chunks(store: ObjectStore, tmp_path: Path) -> None:
    data = random_bytes(1 * MB + 17)
    source = write_file(tmp_path / "staging" / "upload.bin", data)
    key = content_key(hashlib.sha256(data).hexdigest())  # an original's key names its content, and S3 checks it
    store.put_file(key, source, "image/jpeg")

    chunks = list(store.iter_chunks(key, chunk_size=64 * 1024))
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= 64 * 1024 for chunk in chunks)
    assert len(chunks) >= 17
    assert source.read_bytes() == data  # the staged file is left alone


def test_empty_object_round_trips(store: ObjectStore) -> None:
    store.put_bytes("derivatives/empty", b"", "application/octet-stream")
    assert read_all(store, "derivatives/empty") == b""
    assert list(store.iter_chunks("derivatives/empty")) == []
    assert store.stat("derivatives/empty").size == 0


def test_a_20_mb_file_round_trips(store: ObjectStore, tmp_path: Path) -> None:
    data = random_bytes(20 * MB + 12_345)
    source = write_file(tmp_path / "big.jpg", data)
    key = content_key(hashlib.sha256(data).hexdigest())
    store.put_file(key, source, "image/jpeg")

    digest = hashlib.sha256()
    total = 0
    for chunk in store.iter_chunks(key, chunk_size=1 * MB):
        digest.update(chunk)
        total += len(chunk)
    assert total == len(data)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    info = store.stat(key)
    assert info.size == len(data)
    if isinstance(store, S3Store):
        # Above the 8 MB threshold of the test settings, so it went up in parts: S3 multipart ETags end in -N.
        assert info.etag is not None and info.etag.endswith("-3"), info.etag


def test_stat_returns_object_info(store: ObjectStore) -> None:
    store.put_bytes("originals/x1", b"12345", "image/png")
    info = store.stat("originals/x1")
    assert info == ObjectInfo(key="originals/x1", size=5, etag=info.etag, modified=info.modified)
    # When it was written, in naive UTC, as both backends report it (clocks here agree within seconds).
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(tzinfo=None)
    assert info.modified is not None and abs((now - info.modified).total_seconds()) < 120
    listed = next(i for i in store.list("originals/") if i.key == "originals/x1")
    assert listed.modified is not None and abs((listed.modified - info.modified).total_seconds()) < 2
    if isinstance(store, S3Store):
        assert info.etag == hashlib.md5(b"12345").hexdigest()  # single-part ETag is the MD5


@pytest.mark.parametrize("operation", ["open", "stat", "iter_chunks"])
def test_a_missing_key_raises_object_not_found(store: ObjectStore, operation: str) -> None:
    store.put_bytes("originals/aa/bb/present", b"x", "image/jpeg")
    with pytest.raises(ObjectNotFound) as caught:
        getattr(store, operation)("originals/aa/bb/missing")  # iter_chunks raises on the call, not later
    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value, ArchiveError)
    assert not isinstance(caught.value, StorageUnavailable)


def test_a_prefix_of_a_key_is_not_an_object(store: ObjectStore) -> None:
    store.put_bytes("originals/aa/bb/cc", b"x", "image/jpeg")
    assert not store.exists("originals/aa/bb")
    with pytest.raises(ObjectNotFound):
        store.stat("originals/aa")
    with pytest.raises(ObjectNotFound):
        store.open("originals/aa/bb")
    store.delete("originals/aa/bb")  # not an object: nothing happens
    assert store.exists("originals/aa/bb/cc")


def test_exists_and_delete(store: ObjectStore) -> None:
    assert not store.exists("derivatives/a/b/preview.webp")
    store.put_bytes("derivatives/a/b/preview.webp", b"RIFF....WEBP", "image/webp")
    assert store.exists("derivatives/a/b/preview.webp")

    store.delete("derivatives/a/b/preview.webp")
    assert not store.exists("derivatives/a/b/preview.webp")
    with pytest.raises(ObjectNotFound):
        store.open("derivatives/a/b/preview.webp")
    store.delete("derivatives/a/b/preview.webp")  # again: fine
    store.delete("derivatives/never/there")  # never existed: fine
    assert list(store.list("derivatives/")) == []


def test_list_returns_keys_under_a_prefix_sorted(store: ObjectStore) -> None:
    keys = [
        "originals/ab/cd/2",
        "originals/ab/cd/1",
        "originals/ab/ce/1",
        "originals/b0/00/9",
        "originals-old/x",
        "derivatives/ab/s/thumb.jpg",
        "a/b",
        "a-c",
    ]
    for index, key in enumerate(keys):
        store.put_bytes(key, b"x" * (index + 1), "application/octet-stream")

    listed = list(store.list("originals/"))
    assert [info.key for info in listed] == [
        "originals/ab/cd/1",
        "originals/ab/cd/2",
        "originals/ab/ce/1",
        "originals/b0/00/9",
    ]
    assert {info.key: info.size for info in listed}["originals/ab/cd/2"] == 1
    assert [info.key for info in store.list("originals/ab/c")] == [
        "originals/ab/cd/1",
        "originals/ab/cd/2",
        "originals/ab/ce/1",
    ]
    assert [info.key for info in store.list("originals")] == [
        "originals-old/x",
        "originals/ab/cd/1",
        "originals/ab/cd/2",
        "originals/ab/ce/1",
        "originals/b0/00/9",
    ]
    everything = [info.key for info in store.list()]
    assert everything == sorted(keys)
    assert everything[:2] == ["a-c", "a/b"]  # byte order, as S3 lists: '-' (0x2d) before '/' (0x2f)
    assert list(store.list("nothing/")) == []
    assert list(store.list("originals/zz/")) == []


def test_put_is_idempotent(store: ObjectStore, tmp_path: Path) -> None:
    data = random_bytes(50_000)
    source = write_file(tmp_path / "a.jpg", data)
    key = content_key(hashlib.sha256(data).hexdigest())
    store.put_file(key, source, "image/jpeg")
    store.put_file(key, source, "image/jpeg")
    store.put_bytes(key, data, "image/jpeg")

    assert read_all(store, key) == data
    assert [info.key for info in store.list("originals/")] == [key]


def test_overwrite_replaces_the_whole_object(store: ObjectStore) -> None:
    store.put_bytes("derivatives/k", b"A" * 100_000, "application/octet-stream")
    store.put_bytes("derivatives/k", b"B" * 10, "application/octet-stream")
    assert read_all(store, "derivatives/k") == b"B" * 10  # no tail of the longer old object
    assert store.stat("derivatives/k").size == 10


def test_a_reader_sees_the_old_or_the_new_object_never_a_mix(store: ObjectStore) -> None:
    old = b"O" * (2 * MB)
    new = b"N" * (2 * MB)
    store.put_bytes("derivatives/race", old, "application/octet-stream")

    with store.open("derivatives/race") as reader:
        first = reader.read(1000)
        store.put_bytes("derivatives/race", new, "application/octet-stream")
        seen = first + reader.read()
    assert seen in (old, new)
    assert read_all(store, "derivatives/race") == new


def test_readers_while_writing_never_see_a_partial_object(store: ObjectStore) -> None:
    versions = [bytes([65 + n]) * (512 * 1024 + n) for n in range(6)]
    store.put_bytes("derivatives/busy", versions[0], "application/octet-stream")
    seen: list[bytes] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def read_repeatedly() -> None:
        try:
            while not done.is_set():
                seen.append(read_all(store, "derivatives/busy"))
        except BaseException as exc:  # reported below
            failures.append(exc)

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for _round in range(3):
            for version in versions:
                store.put_bytes("derivatives/busy", version, "application/octet-stream")
    finally:
        done.set()
        reader.join(timeout=60)
    assert not failures, failures
    assert seen
    assert all(data in versions for data in seen)


def test_a_failed_put_leaves_the_old_object(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("originals/keep", b"old", "image/jpeg")
    with pytest.raises(StorageError) as caught:
        store.put_file("originals/keep", tmp_path / "does-not-exist.jpg", "image/jpeg")
    assert not isinstance(caught.value, ObjectNotFound)
    assert read_all(store, "originals/keep") == b"old"
    assert [info.key for info in store.list()] == ["originals/keep"]


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "originals/../../escape",
        "a/./b",
        "/etc/passwd",
        "a\\b",
        "a//b",
        "a/",
        "",
        ".hidden",
        "a/\x00b",
    ],
)
def test_unsafe_keys_are_refused(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        store.put_bytes(key, b"x", "image/jpeg")
    for operation in ("open", "stat", "delete", "exists", "iter_chunks"):
        with pytest.raises(StorageError):
            getattr(store, operation)(key)
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path.parent / "escape").exists()
    assert list(store.list()) == []


def test_a_key_with_dot_dot_cannot_reach_outside_the_local_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    write_file(tmp_path / "secret.txt", b"secret")
    with pytest.raises(StorageError):
        store.open("../secret.txt")
    with pytest.raises(StorageError):
        store.put_bytes("../secret.txt", b"overwritten", "text/plain")
    with pytest.raises(StorageError):
        store.delete("../secret.txt")
    with pytest.raises(StorageError):
        list(store.list("../"))
    assert (tmp_path / "secret.txt").read_bytes() == b"secret"


def test_download_url(store: ObjectStore) -> None:
    data = random_bytes(70_000)
    store.put_bytes("originals/dl", data, "image/jpeg")
    url = store.download_url("originals/dl", "Brücke am Rhein.jpg", expires=120)
    if isinstance(store, LocalStore):
        assert url is None  # the app streams local files itself
        return
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
        disposition = response.headers["Content-Disposition"]
    assert body == data
    assert disposition.startswith("attachment;")
    assert 'filename="Brucke am Rhein.jpg"' in disposition
    assert "filename*=UTF-8''Br%C3%BCcke%20am%20Rhein.jpg" in disposition
    assert "X-Amz-Expires=120" in url


def test_check_passes_on_a_working_store(store: ObjectStore) -> None:
    store.check()
    store.check()


def test_chunk_size_must_be_positive(store: ObjectStore) -> None:
    store.put_bytes("derivatives/c", b"abc", "text/plain")
    with pytest.raises(StorageError):
        store.iter_chunks("derivatives/c", chunk_size=0)


# -- pure functions and the factory --------------------------------------------------------------------------


def test_content_key_format() -> None:
    digest = hashlib.sha256(b"photo").hexdigest()
    assert content_key(digest) == f"originals/{digest[:2]}/{digest[2:4]}/{digest}"
    assert content_key(digest.upper()) == content_key(digest)
    for bad in ["", "abc", digest[:-1], digest + "0", "g" * 64, "../" + digest[3:]]:
        with pytest.raises(StorageError):
            content_key(bad)


def test_make_store_picks_the_backend(tmp_path: Path) -> None:
    local = make_store({"STORAGE": "local", "LOCAL_STORE_DIR": str(tmp_path / "s")})
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path / "s"
    s3 = make_store({"STORAGE": "s3", "S3_ENDPOINT": "http://127.0.0.1:9", "S3_BUCKET": "b"})
    assert isinstance(s3, S3Store)
    assert s3.bucket == "b"
    for settings in [
        {"STORAGE": "ftp"},
        {},
        {"STORAGE": "local"},
        {"STORAGE": "s3", "S3_BUCKET": ""},
        {"STORAGE": "s3", "S3_BUCKET": "b", "S3_ADDRESSING_STYLE": "sideways"},
        {"STORAGE": "s3", "S3_BUCKET": "b", "S3_CHECKSUM": "always"},
        {"STORAGE": "s3", "S3_BUCKET": "b", "S3_CONNECT_TIMEOUT": "soon"},
        {"STORAGE": "s3", "S3_BUCKET": "b", "S3_MAX_ATTEMPTS": 0},
        {"STORAGE": "s3", "S3_BUCKET": "b", "S3_ACCESS_KEY": "only-half"},
    ]:
        with pytest.raises(StorageError):
            make_store(settings)


def test_make_store_builds_the_client_from_settings() -> None:
    store = S3Store.from_settings(
        {
            "S3_ENDPOINT": "http://127.0.0.1:9",
            "S3_BUCKET": "b",
            "S3_REGION": "eu-central-1",
            "S3_ADDRESSING_STYLE": "path",
            "S3_CHECKSUM": "when_supported",
            "S3_CONNECT_TIMEOUT": "2.5",
            "S3_READ_TIMEOUT": 7,
            "S3_MAX_ATTEMPTS": "4",
            "S3_MULTIPART_THRESHOLD": 6 * MB,
        }
    )
    config = store.client.meta.config
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    assert store.client.meta.region_name == "eu-central-1"
    assert config.connect_timeout == 2.5
    assert config.read_timeout == 7
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_supported"
    assert config.response_checksum_validation == "when_supported"
    assert store.transfer_config.multipart_threshold == 6 * MB


def test_the_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_bytes("originals/ab/cd/x", b"1", "image/jpeg")
    store.put_file("originals/ab/cd/x", write_file(tmp_path / "src", b"2"), "image/jpeg")
    store.check()
    assert sorted(p.name for p in (tmp_path / "root").rglob("*") if p.is_file()) == ["x"]
    assert (tmp_path / "root" / "originals" / "ab" / "cd" / "x").read_bytes() == b"2"


def test_a_local_store_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    write_file(tmp_path / "a-file", b"")
    store = LocalStore(tmp_path / "a-file" / "store")
    with pytest.raises(StorageUnavailable, match="not usable"):
        store.check()
    with pytest.raises(StorageUnavailable):
        list(store.list())


# -- error translation with a stand-in client (no server needed) --------------------------------------------


class _FailingClient:
    """A stand-in boto3 client whose every call raises the given exception."""

    class meta:  # mimics the boto3 client's attribute
        endpoint_url = "http://stand-in"
        region_name = "us-east-1"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise self.error

        return fail


def _client_error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, ObjectNotFound),
        ("404", 404, ObjectNotFound),
        ("NoSuchBucket", 404, StorageUnavailable),
        ("InvalidAccessKeyId", 403, StorageUnavailable),
        ("SignatureDoesNotMatch", 403, StorageUnavailable),
        ("AccessDenied", 403, StorageUnavailable),
        ("SlowDown", 503, StorageUnavailable),
        ("InternalError", 500, StorageUnavailable),
        ("InvalidArgument", 400, StorageError),
    ],
)
def test_client_errors_are_translated(code: str, status: int, expected: type[StorageError]) -> None:
    store = S3Store(_FailingClient(_client_error(code, status)), "bucket")
    with pytest.raises(expected) as caught:
        store.open("originals/x")
    assert type(caught.value) is expected
    assert isinstance(caught.value.__cause__, ClientError)


def test_a_read_error_while_streaming_is_translated() -> None:
    class Body:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, amount: int | None = None) -> bytes:
            self.calls += 1
            if self.calls == 1:
                return b"x" * 10
            raise ReadTimeoutError(endpoint_url="http://stand-in/bucket/key")

        def close(self) -> None:
            pass

    class Client:
        meta = _FailingClient.meta

        def get_object(self, **_kwargs: Any) -> dict[str, Any]:
            return {"Body": Body()}

    store = S3Store(Client(), "bucket")
    with pytest.raises(StorageUnavailable), store.open("originals/x") as stream:
        stream.read()
    with pytest.raises(StorageUnavailable):
        b"".join(store.iter_chunks("originals/x", chunk_size=5))


# -- S3 only: against the real server ------------------------------------------------------------------------


@pytest.fixture
def s3_store(s3_config: dict[str, Any]) -> S3Store:
    made = S3Store.from_settings(s3_config)
    return made


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_wrong_secret_is_storage_unavailable(s3_config: dict[str, Any]) -> None:
    S3Store.from_settings(s3_config).put_bytes("originals/x", b"x", "image/jpeg")
    store = S3Store.from_settings({**s3_config, "S3_SECRET_KEY": s3_config["S3_SECRET_KEY"] + "wrong"})
    with pytest.raises(StorageUnavailable, match="S3_SECRET_KEY"):
        store.check()
    for call in (
        lambda: store.put_bytes("originals/y", b"y", "image/jpeg"),
        lambda: store.open("originals/x"),
        lambda: store.stat("originals/x"),
        lambda: store.exists("originals/x"),  # must not answer False: the object may well be there
        lambda: store.delete("originals/x"),
        lambda: list(store.list("originals/")),
    ):
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert not isinstance(caught.value, ObjectNotFound)
    assert S3Store.from_settings(s3_config).exists("originals/x")  # nothing was deleted


def test_an_unknown_access_key_is_storage_unavailable(s3_config: dict[str, Any]) -> None:
    store = S3Store.from_settings({**s3_config, "S3_ACCESS_KEY": "NOSUCHKEY123"})
    with pytest.raises(StorageUnavailable):
        store.put_bytes("originals/y", b"y", "image/jpeg")
    with pytest.raises(StorageUnavailable):
        store.check()


def test_an_unreachable_endpoint_is_storage_unavailable_quickly(
    s3_config: dict[str, Any], tmp_path: Path
) -> None:
    settings = {
        **s3_config,
        "S3_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "S3_CONNECT_TIMEOUT": 1,
        "S3_READ_TIMEOUT": 1,
        "S3_MAX_ATTEMPTS": 2,
    }
    store = S3Store.from_settings(settings)
    source = write_file(tmp_path / "a.jpg", b"x" * 1000)
    for call in (
        store.check,
        lambda: store.put_bytes("originals/y", b"y", "image/jpeg"),
        lambda: store.put_file("originals/y", source, "image/jpeg"),
        lambda: store.open("originals/y"),
        lambda: store.stat("originals/y"),
        lambda: store.exists("originals/y"),
        lambda: store.delete("originals/y"),
        lambda: list(store.list()),
    ):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert time.monotonic() - started < 8
        assert "127.0.0.1" in str(caught.value)


def test_a_server_that_never_answers_times_out_as_storage_unavailable(s3_config: dict[str, Any]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # accepts connections (the kernel does) but never answers
        port = listener.getsockname()[1]
        store = S3Store.from_settings(
            {
                **s3_config,
                "S3_ENDPOINT": f"http://127.0.0.1:{port}",
                "S3_READ_TIMEOUT": 0.5,
                "S3_MAX_ATTEMPTS": 1,
            }
        )
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            store.stat("originals/x")
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("checksum", ["when_required", "when_supported"])
def test_both_checksum_settings_work_against_the_server(
    s3_config: dict[str, Any], checksum: str, tmp_path: Path
) -> None:
    store = S3Store.from_settings({**s3_config, "S3_CHECKSUM": checksum, "S3_MULTIPART_THRESHOLD": 5 * MB})
    small = random_bytes(100_000)
    big = random_bytes(11 * MB)
    store.put_bytes("derivatives/small", small, "image/webp")
    store.put_file("originals/big", write_file(tmp_path / "big", big), "image/jpeg")

    assert read_all(store, "derivatives/small") == small
    assert b"".join(store.iter_chunks("originals/big")) == big
    assert store.stat("originals/big").etag.endswith("-3")  # type: ignore[union-attr]
    assert [info.key for info in store.list()] == ["derivatives/small", "originals/big"]
    store.delete("derivatives/small")
    assert not store.exists("derivatives/small")


def test_path_addressing_puts_the_bucket_in_the_path(s3_config: dict[str, Any]) -> None:
    store = S3Store.from_settings({**s3_config, "S3_ADDRESSING_STYLE": "path"})
    store.put_bytes("originals/p", b"path style", "text/plain")
    assert read_all(store, "originals/p") == b"path style"
    url = store.download_url("originals/p", "p.txt")
    assert url is not None
    assert url.startswith(f"{s3_config['S3_ENDPOINT']}/{s3_config['S3_BUCKET']}/originals/p?")


def test_content_type_is_stored(s3_config: dict[str, Any], tmp_path: Path) -> None:
    store = S3Store.from_settings(s3_config)
    store.put_file("originals/t", write_file(tmp_path / "t", b"\xff\xd8\xff"), "image/jpeg")
    store.put_bytes("derivatives/t.webp", b"RIFF", "image/webp")
    client = store.client
    assert client.head_object(Bucket=store.bucket, Key="originals/t")["ContentType"] == "image/jpeg"
    assert client.head_object(Bucket=store.bucket, Key="derivatives/t.webp")["ContentType"] == "image/webp"


def test_a_missing_bucket_is_storage_unavailable(s3_config: dict[str, Any]) -> None:
    store = S3Store.from_settings({**s3_config, "S3_BUCKET": new_bucket_name()})
    with pytest.raises(StorageUnavailable, match="does not exist"):
        store.check()
    with pytest.raises(StorageUnavailable):
        store.put_bytes("originals/x", b"x", "image/jpeg")
    with pytest.raises(StorageUnavailable):
        store.open("originals/x")
    with pytest.raises(StorageUnavailable):
        list(store.list())


def test_ensure_bucket_creates_a_private_bucket(s3_config: dict[str, Any], s3_server: Any) -> None:
    bucket = new_bucket_name()
    store = S3Store.from_settings({**s3_config, "S3_BUCKET": bucket})
    try:
        store.ensure_bucket()
        store.ensure_bucket()  # already there: fine
        store.check()
        store.put_bytes("originals/private", b"secret", "image/jpeg")
        anonymous = f"{s3_config['S3_ENDPOINT']}/{bucket}/originals/private"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(anonymous, timeout=10).close()
        assert caught.value.code == 403
        caught.value.close()
        with pytest.raises(urllib.error.HTTPError) as listing:
            urllib.request.urlopen(f"{s3_config['S3_ENDPOINT']}/{bucket}", timeout=10).close()
        assert listing.value.code == 403
        listing.value.close()
    finally:
        empty_and_remove_bucket(admin_client(s3_server), bucket)


def test_ensure_bucket_with_wrong_credentials_is_storage_unavailable(s3_config: dict[str, Any]) -> None:
    store = S3Store.from_settings({**s3_config, "S3_BUCKET": new_bucket_name(), "S3_SECRET_KEY": "wrong"})
    with pytest.raises(StorageUnavailable):
        store.ensure_bucket()


def test_an_expired_download_url_is_refused(s3_store: S3Store) -> None:
    s3_store.put_bytes("originals/e", b"e", "image/jpeg")
    url = s3_store.download_url("originals/e", "e.jpg", expires=1)
    assert url is not None
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10).close()
    assert caught.value.code == 403
    caught.value.close()


def test_the_store_reuses_one_client(s3_store: S3Store) -> None:
    client = s3_store.client
    s3_store.put_bytes("originals/c", b"c", "image/jpeg")
    s3_store.stat("originals/c")
    list(s3_store.list())
    assert s3_store.client is client


def _all_iterators_closed(chunks: Iterator[bytes]) -> None:
    for _chunk in chunks:
        break


def test_an_abandoned_chunk_iterator_does_not_leak(store: ObjectStore) -> None:
    store.put_bytes("derivatives/abandon", b"z" * 600_000, "application/octet-stream")
    chunks = store.iter_chunks("derivatives/abandon", chunk_size=1000)
    _all_iterators_closed(chunks)
    del chunks  # closing on collection must not warn (warnings are errors in this suite)
    unstarted = store.iter_chunks("derivatives/abandon")
    del unstarted


def test_discard_incomplete_removes_only_unfinished_writes(store: ObjectStore) -> None:
    from datetime import UTC, datetime, timedelta

    store.put_bytes("originals/aa/bb/done", b"finished", "image/jpeg")
    if isinstance(store, S3Store):
        upload = store.client.create_multipart_upload(Bucket=store.bucket, Key="originals/aa/bb/half")
        unfinished = lambda: [u["UploadId"] for u in  # noqa: E731
                              store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]
        assert unfinished() == [upload["UploadId"]]
    else:
        half = store.root / "originals/aa/bb/.tmp-crashed"
        half.write_bytes(b"half")
        unfinished = lambda: [p.name for p in store.root.rglob(".tmp-*")]  # noqa: E731
    now = datetime.now(UTC).replace(tzinfo=None)
    assert store.discard_incomplete(older_than=now - timedelta(hours=1)) == 0  # too young: maybe in flight
    assert unfinished() != []
    assert store.discard_incomplete(older_than=now + timedelta(minutes=5)) == 1
    assert unfinished() == []
    assert store.exists("originals/aa/bb/done")
