"""Object storage for originals and derivatives: one small protocol, two backends.

- ``LocalStore`` (the embedded default): keys are files under a root folder. Writes go to a temporary file in
  the target folder, are fsynced and then renamed over the key, so a reader sees the old or the new object,
  never a half-written one.
- ``S3Store``: any S3-compatible service through boto3 (Ceph RGW, MinIO, AWS S3). One client per store.
  Every write is verified end to end (see "Checksums" below).

Checksums (S3). What the store sends is exactly what it hashed: each request body (a whole object, or one part of
a multipart upload) is read into memory once, and its MD5 goes along as Content-MD5, which every S3 service checks
(a mismatch is refused with BadDigest before anything is stored). The ETag the service answers with (the body's
MD5; for a multipart object the MD5 of the parts' MD5s followed by "-N") is compared as well, for services that
skip the Content-MD5 check. An original's key names its SHA-256 (``content_key``): the bytes read are hashed
and compared with it before the upload is completed, so a file that changed or was damaged after staging is not
stored under a name that lies. The newer ``x-amz-checksum-sha256`` (ChecksumAlgorithm="SHA256") is not used:
Ceph 16 (Pacific) accepts the header and ignores it (an object with a wrong checksum is stored; measured), so it
would give a false sense of safety. A mismatch raises ``ChecksumMismatch`` (a StorageError) and leaves nothing
behind: an unfinished multipart upload is aborted, a written object that fails the check is deleted.

Both backends accept the same keys (see ``validate_key``) and raise only the project's own errors:
``ObjectNotFound`` for a missing key, ``StorageUnavailable`` when the service cannot be used (down, timeout,
bad credentials, missing bucket or folder), and ``StorageError`` for everything else. boto3 and botocore
exceptions never escape; the original exception is kept as ``__cause__`` for the logs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import os
import re
import socket
import tempfile
import threading
import unicodedata
import urllib.parse
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast, runtime_checkable

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from archive.errors import ArchiveError
from archive.text import shorten_filename

log = logging.getLogger(__name__)

__all__ = [
    "ChecksumMismatch",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "StorageUnavailable",
    "content_key",
    "make_store",
    "validate_key",
]

DEFAULT_CHUNK_SIZE = 256 * 1024
DEFAULT_MULTIPART_THRESHOLD = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # the S3 limit for every part but the last
MAX_KEY_BYTES = 1024  # the S3 limit
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the SigV4 limit


class StorageError(ArchiveError):
    """The object store could not do what was asked."""


class ObjectNotFound(StorageError):
    """No object under this key."""


class StorageUnavailable(StorageError):
    """The object store cannot be used right now: service down, timeout, bad credentials, missing bucket..."""


class ChecksumMismatch(StorageError):
    """What the store holds (or was about to hold) is not the bytes that were meant: nothing was kept."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None
    # When the object was last written (UTC, naive); reconcile uses it to leave uploads in flight alone.
    modified: datetime | None = None


@runtime_checkable
class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file's bytes under key. Idempotent; readers never see a half-written object."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def open(self, key: str) -> BinaryIO:
        """A streaming reader; the caller closes it. ObjectNotFound if missing."""
        ...

    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes in chunks. ObjectNotFound (raised by this call, not later) if missing."""
        ...

    def stat(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is fine."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix, sorted by key."""
        ...

    def check(self) -> None:
        """Health check: raises StorageUnavailable with a clear message."""
        ...

    def download_url(self, key: str, filename: str, expires: int = 300) -> str | None:
        """A short-lived URL that downloads the object as an attachment, or None (the app streams it)."""
        ...

    def discard_incomplete(self, older_than: datetime) -> int:
        """Remove writes that a crash left unfinished (temporary files, multipart uploads) started before
        older_than (naive UTC); returns how many. Finished objects are never touched."""
        ...


# -- keys ----------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def validate_key(key: str) -> str:
    """Return key if it is a safe object key, else raise StorageError.

    A key is one or more '/'-separated segments: no empty segment (so no leading, trailing or double '/'),
    no '.' or '..', no segment starting with '.', no backslash, no control characters, at most 1024 bytes.
    Both backends apply the same rules, so a key works everywhere or nowhere.
    """
    if not isinstance(key, str) or not key:
        raise StorageError("object key must be a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise StorageError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if "\\" in key or _CONTROL.search(key):
        raise StorageError(f"object key {key!r} contains a backslash or a control character")
    if key.startswith("/"):
        raise StorageError(f"object key {key!r} must not be an absolute path")
    for segment in key.split("/"):
        if not segment:
            raise StorageError(f"object key {key!r} has an empty segment")
        if segment.startswith("."):
            raise StorageError(f"object key {key!r} has a segment starting with '.' (such as '..')")
    return key


def _validate_prefix(prefix: str) -> str:
    """A list prefix: empty, or a key prefix whose complete segments are valid (the last may be partial)."""
    if prefix == "":
        return prefix
    head, _, last = prefix.rpartition("/")
    if head:
        validate_key(head)
    elif prefix.startswith("/"):
        raise StorageError(f"list prefix {prefix!r} must not be an absolute path")
    if "\\" in last or _CONTROL.search(last) or last.startswith("."):
        raise StorageError(f"list prefix {prefix!r} is not a valid key prefix")
    return prefix


def _from_timestamp(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def delete_best_effort(store: ObjectStore, keys: Iterable[str]) -> None:
    """Delete objects no row points to any more; one that cannot be deleted now is left for reconcile."""
    for key in keys:
        try:
            store.delete(key)
        except StorageError as exc:
            log.warning("could not delete %s (%s); reconcile will", key, exc)


def sha256_of_content_key(key: str) -> str | None:
    """The SHA-256 an original's key promises (``originals/ab/cd/<sha256>``), or None for any other key."""
    match = _CONTENT_KEY.fullmatch(key)
    if match is None or not match.group(3).startswith(match.group(1) + match.group(2)):
        return None
    return match.group(3)


_CONTENT_KEY = re.compile(r"originals/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")


def content_key(sha256_hex: str) -> str:
    """The key of an original: ``originals/ab/cd/<sha256>``."""
    digest = sha256_hex.strip().lower() if isinstance(sha256_hex, str) else ""
    if not _SHA256.fullmatch(digest):
        raise StorageError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    return f"originals/{digest[0:2]}/{digest[2:4]}/{digest}"


_MD5_ETAG = re.compile(r"[0-9a-f]{32}(-[0-9]+)?")


def _md5(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)  # an integrity check, not security


def _b64(md5: Any) -> str:
    return base64.b64encode(md5.digest()).decode("ascii")


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: the MD5 of the parts' MD5s, "-" and the number of parts."""
    return f"{_md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def _check_sha256(key: str, expected: str | None, actual: str) -> None:
    if expected is not None and actual != expected:
        raise ChecksumMismatch(f"cannot store {key!r}: the bytes read have SHA-256 {actual}, not the {expected} "
                               "the key names (the file changed or is damaged); nothing was stored")


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise StorageError(f"chunk_size must be a positive integer, not {chunk_size!r}")


class _ChunkIterator(Iterator[bytes]):
    """Iterates over an open stream in chunks and closes it at the end, on close() or when collected."""

    def __init__(self, stream: BinaryIO, chunk_size: int) -> None:
        self._stream: BinaryIO | None = stream
        self._chunk_size = chunk_size

    def __iter__(self) -> _ChunkIterator:
        return self

    def __next__(self) -> bytes:
        if self._stream is None:
            raise StopIteration
        try:
            chunk = self._stream.read(self._chunk_size)
        except BaseException:
            self.close()
            raise
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def __del__(self) -> None:
        self.close()


# -- local folder ----------------------------------------------------------------------------------------

_TMP_PREFIX = ".tmp-"


class LocalStore:
    """Objects as files under ``root``: ``originals/ab/cd/<sha>`` is ``root/originals/ab/cd/<sha>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _not_found(self, key: str) -> StorageError:
        """A missing object, unless the whole store is missing (a disk not mounted): that is an outage,
        and treating it as 'no such object' would make callers give up on every photo."""
        if not self.root.is_dir():
            return StorageUnavailable(f"local store folder {str(self.root)!r} does not exist")
        return ObjectNotFound(f"no object {key!r}")

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed below, errors told apart from the target's
        except OSError as exc:
            raise StorageError(f"cannot store {key!r}: cannot read source file {str(path)!r}: {exc}") from exc
        try:
            with source:
                self._write_atomically(target, source)
        except OSError as exc:
            raise self._os_error("store", key, exc) from exc

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        target = self._path(key)
        try:
            self._write_atomically(target, io.BytesIO(data))
        except OSError as exc:
            raise self._os_error("store", key, exc) from exc

    def _write_atomically(self, target: Path, source: BinaryIO) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(1024 * 1024):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        self._fsync_dir(target.parent)

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc
        except OSError as exc:
            raise self._os_error("read", key, exc) from exc

    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _check_chunk_size(chunk_size)
        return _ChunkIterator(self.open(key), chunk_size)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc
        except OSError as exc:
            raise self._os_error("stat", key, exc) from exc
        if not path.is_file():
            raise self._not_found(key)
        return ObjectInfo(key=key, size=st.st_size, modified=_from_timestamp(st.st_mtime))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # a "folder" of other keys, not an object
        except OSError as exc:
            raise self._os_error("delete", key, exc) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        _validate_prefix(prefix)
        head = prefix.rpartition("/")[0]
        start = self.root.joinpath(*head.split("/")) if head else self.root
        return self._list(start, prefix)

    def _list(self, start: Path, prefix: str) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            raise StorageUnavailable(f"local store folder {str(self.root)!r} does not exist")
        if not start.is_dir():
            return
        keys: list[str] = []
        try:
            for dirpath, dirnames, filenames in os.walk(start, onerror=_walk_error):
                dirnames[:] = [name for name in dirnames if not name.startswith(".")]
                rel = Path(dirpath).relative_to(self.root).as_posix()
                base = "" if rel == "." else rel + "/"
                keys.extend(
                    base + name
                    for name in filenames
                    if not name.startswith(".") and (base + name).startswith(prefix)
                )
        except _WalkError as exc:
            raise self._os_error("list", prefix, exc.error) from exc.error
        keys.sort()
        for key in keys:
            try:
                st = self.root.joinpath(*key.split("/")).stat()
            except FileNotFoundError:
                continue  # deleted while we were listing
            except OSError as exc:
                raise self._os_error("list", key, exc) from exc
            yield ObjectInfo(key=key, size=st.st_size, modified=_from_timestamp(st.st_mtime))

    def check(self) -> None:
        """Create the root folder if needed and prove it is writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=_TMP_PREFIX + "check-", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StorageUnavailable(
                f"local store folder {str(self.root)!r} is not usable: {exc.strerror or exc}"
            ) from exc

    def discard_incomplete(self, older_than: datetime) -> int:
        if not self.root.is_dir():
            raise StorageUnavailable(f"local store folder {str(self.root)!r} does not exist")
        removed = 0
        for path in self.root.rglob(_TMP_PREFIX + "*"):
            try:
                if path.is_file() and _from_timestamp(path.stat().st_mtime) < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # finished or removed meanwhile
            except OSError as exc:
                raise self._os_error("clean", str(path.relative_to(self.root)), exc) from exc
        return removed

    def download_url(self, key: str, filename: str, expires: int = 300) -> str | None:
        validate_key(key)
        return None

    def _os_error(self, action: str, key: str, exc: OSError) -> StorageError:
        reason = exc.strerror or str(exc)
        if isinstance(exc, (PermissionError, FileNotFoundError)) or not self.root.is_dir():
            return StorageUnavailable(f"local store {str(self.root)!r}: cannot {action} {key!r}: {reason}")
        return StorageError(f"local store {str(self.root)!r}: cannot {action} {key!r}: {reason}")


class _WalkError(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _walk_error(error: OSError) -> None:
    """os.walk's error handler: a folder removed while we walk is fine, anything else stops the listing."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return
    raise _WalkError(error)


# -- S3 ----------------------------------------------------------------------------------------------------

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DIGEST_CODES = frozenset({"BadDigest", "InvalidDigest"})
_UNAVAILABLE_CODES = frozenset(
    {
        "NoSuchBucket",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403",
        "AllAccessDisabled",
        "AccountProblem",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "RequestTimeTooSkewed",
        "AuthorizationHeaderMalformed",
        "InvalidSecurity",
        "PermanentRedirect",
        "301",
        "SlowDown",
        "ServiceUnavailable",
        "503",
        "InternalError",
        "500",
        "RequestTimeout",
        "QuotaExceeded",
        "XAmzContentSHA256Mismatch",
    }
)
_UNAVAILABLE_BOTO = (
    BotoConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, SSLError
    HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
)
_S3_ERRORS = (BotoCoreError, ClientError, Boto3Error, Urllib3HTTPError)
_ADDRESSING_STYLES = ("path", "virtual", "auto")
_CHECKSUM_MODES = ("when_required", "when_supported")


_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 Session per process: it caches the service models, so a new client costs ~15 ms, not ~200."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def _client_error_parts(exc: ClientError) -> tuple[str, str, int]:
    error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
    meta = exc.response.get("ResponseMetadata", {}) if isinstance(exc.response, dict) else {}
    code = str(error.get("Code", "") or "")
    message = str(error.get("Message", "") or "")
    try:
        status = int(meta.get("HTTPStatusCode", 0) or 0)
    except (TypeError, ValueError):
        status = 0
    return code, message, status


def _root_client_error(exc: BaseException) -> ClientError | None:
    """The ClientError behind boto3's S3UploadFailedError (chained as cause or context), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class S3Store:
    """Objects in one bucket of an S3-compatible service."""

    def __init__(self, client: Any, bucket: str, *, transfer_config: Any | None = None) -> None:
        if not bucket:
            raise StorageError("S3 bucket name is empty (set S3_BUCKET)")
        self.client = client
        self.bucket = bucket
        self.transfer_config = transfer_config

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint={self._endpoint()!r})"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> S3Store:
        """Build the store and its one boto3 client from S3_* settings (see the module documentation)."""
        bucket = str(settings.get("S3_BUCKET") or "").strip()
        if not bucket:
            raise StorageError("S3 storage needs a bucket name: set S3_BUCKET")
        style = str(settings.get("S3_ADDRESSING_STYLE") or "auto").strip().lower()
        if style not in _ADDRESSING_STYLES:
            raise StorageError(
                f"S3_ADDRESSING_STYLE must be one of {', '.join(_ADDRESSING_STYLES)}, not {style!r}"
            )
        checksum = str(settings.get("S3_CHECKSUM") or "when_required").strip().lower()
        if checksum not in _CHECKSUM_MODES:
            raise StorageError(f"S3_CHECKSUM must be one of {', '.join(_CHECKSUM_MODES)}, not {checksum!r}")
        connect_timeout = _positive_number(settings, "S3_CONNECT_TIMEOUT", 5.0)
        read_timeout = _positive_number(settings, "S3_READ_TIMEOUT", 30.0)
        max_attempts = int(_positive_number(settings, "S3_MAX_ATTEMPTS", 3, integer=True))
        threshold = int(_positive_number(settings, "S3_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD,
                                         integer=True))
        region = str(settings.get("S3_REGION") or "us-east-1").strip()
        endpoint = str(settings.get("S3_ENDPOINT") or "").strip() or None
        access_key = str(settings.get("S3_ACCESS_KEY") or "").strip() or None
        secret_key = str(settings.get("S3_SECRET_KEY") or "").strip() or None
        if bool(access_key) != bool(secret_key):
            raise StorageError(
                "set both S3_ACCESS_KEY and S3_SECRET_KEY, or neither (to use the default chain)"
            )

        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": style},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # total_max_attempts counts the first request too (max_attempts would not).
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            request_checksum_calculation=checksum,
            response_checksum_validation=checksum,
        )
        try:
            with _SESSION_LOCK:  # a boto3 Session is not thread-safe; its clients are
                client = _shared_session().client(
                    "s3",
                    endpoint_url=endpoint,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=secret_key,
                    config=config,
                )
        except (*_S3_ERRORS, ValueError) as exc:
            raise StorageError(
                f"cannot set up the S3 client for endpoint {endpoint or 'AWS'!r}: {exc}"
            ) from exc
        transfer = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=max(threshold, MIN_PART_SIZE),
            max_concurrency=4,
        )
        return cls(client, bucket, transfer_config=transfer)

    # -- error translation --------------------------------------------------------------------------------
    def _endpoint(self) -> str:
        try:
            return str(self.client.meta.endpoint_url)
        except AttributeError:
            return "?"

    def _translate(self, exc: BaseException, action: str, key: str | None) -> StorageError:
        what = (
            f"{action} {key!r} in bucket {self.bucket!r}"
            if key is not None
            else f"{action} bucket {self.bucket!r}"
        )
        where = f"S3 at {self._endpoint()}"
        client_error = exc if isinstance(exc, ClientError) else _root_client_error(exc)
        if client_error is not None:
            code, message, status = _client_error_parts(client_error)
            detail = f"{code or status}" + (f": {message}" if message and message != "None" else "")
            if code in _DIGEST_CODES:
                return ChecksumMismatch(f"{where}: cannot {what}: the service received other bytes than were "
                                        f"sent ({detail}); nothing was stored")
            if code in _NOT_FOUND_CODES and key is not None:
                return ObjectNotFound(f"no object {key!r} in bucket {self.bucket!r}")
            if code in ("404", "NotFound", "NoSuchBucket"):
                return StorageUnavailable(f"{where}: cannot {what}: bucket {self.bucket!r} does not exist")
            if code in _UNAVAILABLE_CODES or status in (401, 403) or status >= 500:
                hint = ""
                if (
                    code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403")
                    or status == 403
                ):
                    hint = " (check S3_ACCESS_KEY, S3_SECRET_KEY and the bucket's permissions)"
                return StorageUnavailable(f"{where}: cannot {what}: {detail}{hint}")
            return StorageError(f"{where}: cannot {what}: {detail}")
        if isinstance(exc, (*_UNAVAILABLE_BOTO, Urllib3HTTPError)):
            return StorageUnavailable(f"{where}: cannot {what}: {type(exc).__name__}: {exc}")
        if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
            return StorageUnavailable(f"{where}: cannot {what}: {type(exc).__name__}: {exc}")
        return StorageError(f"{where}: cannot {what}: {type(exc).__name__}: {exc}")

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except (*_S3_ERRORS, OSError) as exc:
            raise self._translate(exc, action, key) from exc

    # -- sizes of uploads ---------------------------------------------------------------------------------
    @property
    def multipart_threshold(self) -> int:
        """Files larger than this go up in parts."""
        return int(getattr(self.transfer_config, "multipart_threshold", DEFAULT_MULTIPART_THRESHOLD))

    @property
    def part_size(self) -> int:
        """The size of each part but the last (S3 wants at least 5 MiB)."""
        chunk = int(getattr(self.transfer_config, "multipart_chunksize", self.multipart_threshold))
        return max(chunk, MIN_PART_SIZE)

    @property
    def upload_concurrency(self) -> int:
        return max(1, int(getattr(self.transfer_config, "max_concurrency", 4)))

    def expected_etag(self, path: Path) -> tuple[int, str]:
        """Size and ETag that ``put_file`` of this file gives on a service with MD5 ETags (for comparing a
        stored copy with a local file without downloading it)."""
        size = Path(path).stat().st_size
        with open(path, "rb") as stream:
            if size <= self.multipart_threshold:
                return size, _md5(stream.read()).hexdigest()
            md5s = [_md5(chunk).digest() for chunk in iter(lambda: stream.read(self.part_size), b"")]
        return size, multipart_etag(md5s)

    # -- ObjectStore --------------------------------------------------------------------------------------
    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload, verified (module documentation, "Checksums"); in parts above the threshold. S3 publishes a
        multipart object only when the upload completes, so readers never see a partial object."""
        validate_key(key)
        source = Path(path)
        if not source.is_file():
            raise StorageError(f"cannot store {key!r}: source file {str(source)!r} does not exist")
        expected_sha256 = sha256_of_content_key(key)
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below, errors told apart from the service's
        except OSError as exc:
            raise StorageError(f"cannot store {key!r}: cannot read source file {str(source)!r}: {exc}") from exc
        with stream:
            try:
                size = os.fstat(stream.fileno()).st_size
                data = stream.read(size + 1) if size <= self.multipart_threshold else None
            except OSError as exc:
                raise StorageError(f"cannot store {key!r}: cannot read source file {str(source)!r}: {exc}") from exc
            extra = {"ContentType": content_type}
            if data is not None and len(data) <= self.multipart_threshold:
                _check_sha256(key, expected_sha256, hashlib.sha256(data).hexdigest())
                self._put_single(key, data, extra)
            else:
                stream.seek(0)
                self._put_multipart(key, stream, extra, expected_sha256)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        data = bytes(data)
        _check_sha256(key, sha256_of_content_key(key), hashlib.sha256(data).hexdigest())
        self._put_single(key, data, {"ContentType": content_type})

    def put_public_copy(self, source_key: str, target_key: str, *, content_type: str, cache_control: str) -> None:
        """Copy an object, inside the service, to a key anyone may read (public-read ACL), with its own
        Content-Type and Cache-Control. Verified: the copy must have the source's ETag, else it is deleted."""
        validate_key(source_key)
        validate_key(target_key)
        source = self.stat(source_key)
        with self._errors("copy", source_key):
            response = self.client.copy_object(
                Bucket=self.bucket, Key=target_key, CopySource={"Bucket": self.bucket, "Key": source_key},
                # The source must still be what we looked at: a replaced derivative is not copied half-known.
                **({"CopySourceIfMatch": f'"{source.etag}"'} if source.etag else {}),
                MetadataDirective="REPLACE", ContentType=content_type, CacheControl=cache_control,
                ACL="public-read",
            )
        answered = str((response.get("CopyObjectResult") or {}).get("ETag") or "").strip('"')
        if source.etag and _MD5_ETAG.fullmatch(source.etag) and answered and answered != source.etag:
            self._discard_mismatch(target_key, f"the copy's ETag {answered} is not the source's {source.etag}")

    # -- verified writes ----------------------------------------------------------------------------------
    def _put_single(self, key: str, data: bytes, extra: dict[str, Any]) -> None:
        md5 = _md5(data)
        with self._errors("store", key):
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=_b64(md5), **extra)
        answered = str(response.get("ETag") or "").strip('"')
        if not answered:  # some services leave it out: ask
            self._confirm(key, len(data), md5.hexdigest())
        elif _MD5_ETAG.fullmatch(answered) and answered != md5.hexdigest():
            self._discard_mismatch(key, f"the service stored ETag {answered}, we sent MD5 {md5.hexdigest()}")

    def _put_multipart(self, key: str, stream: BinaryIO, extra: dict[str, Any], expected_sha256: str | None) -> None:
        with self._errors("store", key):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)["UploadId"]
        try:
            parts, md5s, size = self._upload_parts(key, upload_id, stream, expected_sha256)
            with self._errors("store", key):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort_upload(key, upload_id)
            raise
        # Ceph leaves the ETag out of the completion's answer: the object's own HEAD is the proof anyway.
        self._confirm(key, size, multipart_etag(md5s))

    def _upload_parts(self, key: str, upload_id: str, stream: BinaryIO,
                      expected_sha256: str | None) -> tuple[list[dict[str, Any]], list[bytes], int]:
        """Read the file once, in order: the SHA-256 of the whole is taken here, each part's MD5 in the thread
        that sends it, from the same bytes in memory. At most ``upload_concurrency + 1`` parts are held."""
        whole = hashlib.sha256()
        md5s: list[bytes] = []
        parts: list[dict[str, Any]] = []
        size = number = 0
        with ThreadPoolExecutor(max_workers=self.upload_concurrency, thread_name_prefix="s3-part") as pool:
            in_flight: deque[Future[tuple[dict[str, Any], bytes]]] = deque()

            def collect() -> None:
                part, md5 = in_flight.popleft().result()
                parts.append(part)
                md5s.append(md5)

            while True:
                try:
                    chunk = stream.read(self.part_size)
                except OSError as exc:
                    raise StorageError(f"cannot store {key!r}: cannot read the source file: {exc}") from exc
                if not chunk:
                    break
                whole.update(chunk)
                size += len(chunk)
                number += 1
                in_flight.append(pool.submit(self._upload_part, key, upload_id, number, chunk))
                del chunk
                if len(in_flight) >= self.upload_concurrency:
                    collect()
            while in_flight:
                collect()
        _check_sha256(key, expected_sha256, whole.hexdigest())
        return parts, md5s, size

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> tuple[dict[str, Any], bytes]:
        md5 = _md5(data)
        with self._errors("store", key):
            response = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                               Body=data, ContentMD5=_b64(md5))
        answered = str(response.get("ETag") or "").strip('"')
        if _MD5_ETAG.fullmatch(answered) and answered != md5.hexdigest():
            raise ChecksumMismatch(f"cannot store {key!r}: part {number} arrived as ETag {answered}, "
                                   f"we sent MD5 {md5.hexdigest()}")
        return {"PartNumber": number, "ETag": response["ETag"]}, md5.digest()

    def _abort_upload(self, key: str, upload_id: str) -> None:
        """Best effort: an upload that cannot be aborted now is removed by reconcile (discard_incomplete)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (*_S3_ERRORS, OSError) as exc:
            log.warning("could not abort the multipart upload of %s (%s); reconcile will", key, exc)

    def _confirm(self, key: str, size: int, etag: str) -> None:
        """The stored object has the size and (if the service uses MD5 ETags) the ETag we computed."""
        info = self.stat(key)
        if info.size != size:
            self._discard_mismatch(key, f"the service holds {info.size} bytes, we sent {size}")
        if info.etag and _MD5_ETAG.fullmatch(info.etag) and info.etag != etag:
            self._discard_mismatch(key, f"the service holds ETag {info.etag}, we sent {etag}")

    def _discard_mismatch(self, key: str, detail: str) -> None:
        """A written object is not what was meant: remove it (a damaged object is worse than a missing one,
        which reconcile and the consistency checks notice) and raise."""
        log.error("checksum mismatch storing %s: %s; deleting it", key, detail)
        try:
            self.delete(key)
        except StorageError as exc:
            log.error("could not delete the damaged object %s: %s", key, exc)
        raise ChecksumMismatch(f"S3 at {self._endpoint()}: stored {key!r} is damaged ({detail}); it was removed")

    def open(self, key: str) -> BinaryIO:
        validate_key(key)
        with self._errors("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        raw = _S3Reader(response["Body"], self, key)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=DEFAULT_CHUNK_SIZE))

    def iter_chunks(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _check_chunk_size(chunk_size)
        return _ChunkIterator(self.open(key), chunk_size)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._errors("stat", key):
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        etag = response.get("ETag")
        return ObjectInfo(
            key=key, size=int(response["ContentLength"]), etag=etag.strip('"') if etag else None,
            modified=_naive_utc(response.get("LastModified")),
        )

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._errors("delete", key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _client_error_parts(exc)[0] not in _NOT_FOUND_CODES - {"404"}:
                    raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        _validate_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._errors("list", prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    etag = item.get("ETag")
                    yield ObjectInfo(
                        key=item["Key"], size=int(item["Size"]), etag=etag.strip('"') if etag else None,
                        modified=_naive_utc(item.get("LastModified")),
                    )

    def check(self) -> None:
        try:
            with self._errors("reach"):
                self.client.head_bucket(Bucket=self.bucket)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageUnavailable(str(exc)) from exc

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist. It stays private: no ACL is ever set."""
        try:
            self.check()
            return
        except StorageUnavailable as exc:
            cause = exc.__cause__
            missing = isinstance(cause, ClientError) and _client_error_parts(cause)[0] in (
                "404",
                "NotFound",
                "NoSuchBucket",
            )
            if not missing:
                raise
        region = getattr(self.client.meta, "region_name", None) or "us-east-1"
        params: dict[str, Any] = {"Bucket": self.bucket}
        if region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with self._errors("create"):
            try:
                self.client.create_bucket(**params)
            except ClientError as exc:
                if _client_error_parts(exc)[0] != "BucketAlreadyOwnedByYou":
                    raise

    def discard_incomplete(self, older_than: datetime) -> int:
        removed = 0
        with self._errors("clean", ""):
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    started = _naive_utc(upload.get("Initiated"))
                    if started is not None and started < older_than:
                        try:
                            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                               UploadId=upload["UploadId"])
                        except ClientError as exc:
                            if _client_error_parts(exc)[0] != "NoSuchUpload":
                                raise
                            continue  # finished or aborted meanwhile
                        removed += 1
        return removed

    def download_url(self, key: str, filename: str, expires: int = 300) -> str | None:
        validate_key(key)
        if not isinstance(expires, int) or not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise StorageError(
                f"expires must be between 1 and {MAX_PRESIGN_SECONDS} seconds, not {expires!r}"
            )
        with self._errors("sign a download URL for", key):
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": self.bucket,
                        "Key": key,
                        "ResponseContentDisposition": attachment_disposition(filename),
                    },
                    ExpiresIn=expires,
                )
            )


class _S3Reader(io.RawIOBase):
    """A raw reader over a botocore StreamingBody that turns read errors into StorageErrors."""

    def __init__(self, body: Any, store: S3Store, key: str) -> None:
        super().__init__()
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (*_S3_ERRORS, OSError, ValueError) as exc:
            raise self._store._translate(exc, "read", self._key) from exc
        n = len(data)
        view[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


def _positive_number(
    settings: Mapping[str, Any], name: str, default: float, *, integer: bool = False
) -> float:
    raw = settings.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise StorageError(f"{name} must be {kind}, not {raw!r}") from None
    if value <= 0:
        raise StorageError(f"{name} must be greater than 0, not {raw!r}")
    return value


def attachment_disposition(filename: str) -> str:
    """A Content-Disposition header value that makes browsers save the file under (a safe form of) filename.

    RFC 6266: an ASCII fallback ``filename="..."`` plus ``filename*=UTF-8''...`` for the real name.
    """
    name = unicodedata.normalize("NFC", str(filename or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".") or "download"
    name = shorten_filename(name, 200)
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9._ -]+", "_", fallback).strip(" _") or "download"
    encoded = urllib.parse.quote(name, safe="")
    if encoded == fallback:
        return f'attachment; filename="{fallback}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# -- factory -----------------------------------------------------------------------------------------------


def make_store(settings: Mapping[str, Any]) -> ObjectStore:
    """The store chosen by settings["STORAGE"]: "local" (LOCAL_STORE_DIR) or "s3" (S3_* settings)."""
    kind = str(settings.get("STORAGE") or "").strip().lower()
    if kind == "local":
        folder = settings.get("LOCAL_STORE_DIR")
        if not folder:
            raise StorageError("STORAGE is 'local' but LOCAL_STORE_DIR is not set")
        return LocalStore(Path(folder))
    if kind == "s3":
        return S3Store.from_settings(settings)
    raise StorageError(f"STORAGE must be 'local' or 's3', not {settings.get('STORAGE')!r}")
