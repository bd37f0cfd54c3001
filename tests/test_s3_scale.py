"""Every object written to S3 is verified end to end, against the real Ceph radosgw (16, Pacific).

What the server checks was measured first (see archive/storage.py, "Checksums"): radosgw 16 refuses a body whose
Content-MD5 does not match (BadDigest) on PutObject and UploadPart, but accepts and ignores a wrong
``x-amz-checksum-sha256``. So the store sends Content-MD5 with every request, compares the ETags, and checks an
original's bytes against the SHA-256 its key names. Each kind of damage below is made for real:

- a file that changes while it is being uploaded (a byte rewritten on disk between two parts);
- a staged file damaged after its SHA-256 was taken (the key names another hash);
- bytes changed on the way (a botocore hook flips one byte of the request body after the MD5 was taken and
  before the request is signed: what a broken proxy or NIC does behind TLS, where the payload is unsigned);
- the same, on a server that ignores Content-MD5 (the hook also drops the header): only the ETag check is left.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from archive.storage import ChecksumMismatch, S3Store, content_key, multipart_etag

MB = 1024 * 1024


@pytest.fixture
def s3_store(s3_config: dict[str, Any]) -> Iterator[S3Store]:
    store = S3Store.from_settings(s3_config)  # S3_MULTIPART_THRESHOLD = 8 MB: parts of 8 MB
    yield store


def an_original(tmp_path: Path, size: int) -> tuple[Path, bytes, str]:
    data = os.urandom(size)
    path = tmp_path / f"original-{size}.jpg"
    path.write_bytes(data)
    return path, data, content_key(hashlib.sha256(data).hexdigest())


def keys(store: S3Store) -> list[str]:
    return [info.key for info in store.list()]


def unfinished_uploads(store: S3Store) -> list[str]:
    return [u["Key"] for u in store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]


def md5_of_parts(data: bytes, part: int) -> str:
    return multipart_etag([hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)])


@pytest.mark.parametrize("size", [3 * MB + 5, 20 * MB + 12_345], ids=["below-threshold", "multipart"])
def test_an_original_is_stored_with_the_etag_we_computed(s3_store: S3Store, tmp_path: Path, size: int) -> None:
    path, data, key = an_original(tmp_path, size)
    s3_store.put_file(key, path, "image/jpeg")
    info = s3_store.stat(key)
    expected = (hashlib.md5(data).hexdigest() if size <= s3_store.multipart_threshold
                else md5_of_parts(data, s3_store.part_size))
    assert (info.size, info.etag) == (size, expected)
    assert s3_store.expected_etag(path) == (size, expected)  # what move-to-s3 compares with
    assert hashlib.sha256(b"".join(s3_store.iter_chunks(key))).hexdigest() == key.rsplit("/", 1)[1]


def test_a_file_that_changes_while_it_is_uploaded_is_not_stored(s3_store: S3Store, tmp_path: Path) -> None:
    path, data, key = an_original(tmp_path, 20 * MB)
    s3_store.transfer_config.max_concurrency = 1  # one part at a time, so the change lands between two reads
    offset = s3_store.part_size + 1000  # in the second part, not read yet when the first goes out

    def rewrite_the_file(params: dict[str, Any], **_: Any) -> None:
        if params.get("PartNumber") == 1:
            with open(path, "r+b") as out:
                out.seek(offset)
                out.write(bytes([data[offset] ^ 0xFF]))

    s3_store.client.meta.events.register("before-parameter-build.s3.UploadPart", rewrite_the_file)
    with pytest.raises(ChecksumMismatch, match="SHA-256"):
        s3_store.put_file(key, path, "image/jpeg")
    assert keys(s3_store) == []
    assert unfinished_uploads(s3_store) == []  # aborted, not left for reconcile


@pytest.mark.parametrize("size", [1 * MB, 12 * MB], ids=["below-threshold", "multipart"])
def test_a_file_damaged_after_staging_is_refused(s3_store: S3Store, tmp_path: Path, size: int) -> None:
    path, data, key = an_original(tmp_path, size)
    damaged = bytearray(data)
    damaged[size // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(ChecksumMismatch):
        s3_store.put_file(key, path, "image/jpeg")
    assert keys(s3_store) == []
    assert unfinished_uploads(s3_store) == []


class FlipOneByte:
    """A botocore hook that changes one byte of each request body after the store took its MD5 and before the
    request is signed; with ``drop_md5`` it also removes Content-MD5, as a service that ignores it would."""

    def __init__(self, drop_md5: bool = False) -> None:
        self.drop_md5 = drop_md5
        self.flipped = 0

    def __call__(self, request: Any, **_: Any) -> None:
        if request.context.get("flipped") or not request.data:
            return  # a retry is signed again: flip once only
        data = request.data
        if hasattr(data, "read"):  # botocore hands bytes bodies on as a seekable stream
            data = data.read()
        body = bytearray(data)
        body[len(body) // 2] ^= 0x01
        request.data = bytes(body)
        request.context["flipped"] = True
        if self.drop_md5:
            del request.headers["Content-MD5"]
        self.flipped += 1


@pytest.mark.parametrize(("operation", "size"), [("PutObject", 1 * MB), ("UploadPart", 12 * MB)])
def test_bytes_changed_on_the_way_are_refused_by_the_server(s3_store: S3Store, tmp_path: Path,
                                                            operation: str, size: int) -> None:
    path, _data, key = an_original(tmp_path, size)
    s3_store.put_bytes("derivatives/keep", b"kept", "image/webp")
    flip = FlipOneByte()
    s3_store.client.meta.events.register(f"before-sign.s3.{operation}", flip)
    with pytest.raises(ChecksumMismatch) as caught:
        s3_store.put_file(key, path, "image/jpeg")
    assert flip.flipped >= 1
    # radosgw itself refused the body (Content-MD5): nothing damaged was ever stored.
    cause = caught.value.__cause__
    assert isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "BadDigest"
    assert keys(s3_store) == ["derivatives/keep"]
    assert unfinished_uploads(s3_store) == []


@pytest.mark.parametrize(("operation", "size"), [("PutObject", 1 * MB), ("UploadPart", 12 * MB)])
def test_without_content_md5_the_etag_check_catches_it(s3_store: S3Store, tmp_path: Path,
                                                      operation: str, size: int) -> None:
    path, _data, key = an_original(tmp_path, size)
    flip = FlipOneByte(drop_md5=True)
    s3_store.client.meta.events.register(f"before-sign.s3.{operation}", flip)
    with pytest.raises(ChecksumMismatch, match="ETag"):
        s3_store.put_file(key, path, "image/jpeg")
    assert flip.flipped >= 1
    assert keys(s3_store) == []  # what the server did store was deleted again
    assert unfinished_uploads(s3_store) == []


def test_derivative_bytes_are_verified_too(s3_store: S3Store) -> None:
    flip = FlipOneByte(drop_md5=True)
    s3_store.client.meta.events.register("before-sign.s3.PutObject", flip)
    with pytest.raises(ChecksumMismatch):
        s3_store.put_bytes("derivatives/ab/x/thumb-0123.webp", b"RIFF" + os.urandom(5000), "image/webp")
    assert keys(s3_store) == []


def test_a_public_copy_is_verified_and_anyone_can_read_it(s3_store: S3Store, s3_config: dict[str, Any]) -> None:
    import requests

    data = os.urandom(50_000)
    s3_store.put_bytes("derivatives/ab/x/thumb-1.webp", data, "image/webp")
    s3_store.put_public_copy("derivatives/ab/x/thumb-1.webp", "public/g/copy.webp", content_type="image/webp",
                             cache_control="public, max-age=60")
    assert s3_store.stat("public/g/copy.webp").etag == s3_store.stat("derivatives/ab/x/thumb-1.webp").etag
    endpoint, bucket = s3_config["S3_ENDPOINT"], s3_config["S3_BUCKET"]
    public = requests.get(f"{endpoint}/{bucket}/public/g/copy.webp", timeout=10)
    assert public.status_code == 200 and public.content == data
    assert public.headers["Content-Type"] == "image/webp"
    assert public.headers["Cache-Control"] == "public, max-age=60"
    private = requests.get(f"{endpoint}/{bucket}/derivatives/ab/x/thumb-1.webp", timeout=10)
    assert private.status_code == 403
