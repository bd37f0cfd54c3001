"""Where uploaded files go while a request is read: into the staging folder, never memory or /tmp.

Werkzeug would keep small files in memory and big ones in the system temp folder (often RAM on small
servers). Ours go to an unnamed file in the staging folder, which vanishes if the process dies, and stop
storing bytes one past the per-file limit: ingest then refuses that file as too large, the others in the
same request go on.
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

from flask import Request, current_app


class _CappedFile:
    """A temporary file that keeps at most ``cap`` bytes; the rest is read from the client and dropped."""

    def __init__(self, handle: IO[bytes], cap: int) -> None:
        self._handle = handle
        self._room = cap

    def write(self, data: bytes) -> int:
        if self._room > 0:
            kept = data[: self._room]
            try:
                self._handle.write(kept)
            except OSError:
                # A full staging disk: the request fails (errors_web answers 503); give the space back now,
                # not whenever the half-written file is collected.
                self._handle.close()
                raise
            self._room -= len(kept)
        return len(data)

    def __getattr__(self, name: str) -> Any:  # read, seek, tell, close, ... as the real file
        return getattr(self._handle, name)

    # Special methods are looked up on the class, not through __getattr__.
    def __iter__(self) -> Any:
        return iter(self._handle)

    def __enter__(self) -> _CappedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class StagingRequest(Request):
    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        config = current_app.config
        # Werkzeug closes it when the request ends; unnamed, so nothing is left if the process dies.
        handle = tempfile.TemporaryFile(dir=config["STAGING_DIR"], prefix="request-")  # noqa: SIM115
        return _CappedFile(handle, int(config["MAX_UPLOAD_BYTES"]) + 1)  # type: ignore[return-value]
