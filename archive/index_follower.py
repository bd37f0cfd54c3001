"""Each web host's own search index, following the database's outbox (SEARCH_INDEX_WRITER=follower).

With several web hosts, every host searches its own Whoosh folder (INDEX_DIR) and runs ``brucken follow-index``
beside its web server: the follower applies the outbox's ordered changes to that folder, so every host finds
what any host published within about INDEX_FOLLOW_SECONDS. A new host starts with an empty folder: the first
pass rebuilds the index from the database and then follows (see ``indexing.apply_outbox``). Unpublished photos
leave search on every host at once, before the follower catches up (``indexing.not_yet_hidden``).

One follower per index folder: a second one on the same folder stops with a message instead of fighting over
Whoosh's write lock. Each follower records how far it got in ``outbox_cursors`` ("index:<host>:<folder>"), for
the health page and for the operator.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from .errors import ArchiveError
from .indexing import apply_outbox
from .models import OutboxCursor, db, utcnow
from .search import IndexBusy, SearchUnavailable

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

LOCK_FILE = "follower.lock"


class FollowerAlreadyRunning(ArchiveError):
    pass


def cursor_name(index_dir: str) -> str:
    """This host's name and its index folder: two followers on one machine (tests, or two archives) differ."""
    name = f"index:{socket.gethostname()}:{Path(index_dir).resolve()}"
    return name if len(name) <= 120 else name[:60] + "…" + name[-59:]


@contextmanager
def only_follower(index_dir: str) -> Iterator[None]:
    """Hold the folder's follower lock for as long as this follower runs (released when the process dies)."""
    folder = Path(index_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FollowerAlreadyRunning(
                f"Ein anderer Prozess hält den Suchindex in {folder} schon aktuell. / Another follower already keeps "
                f"the search index in {folder} up to date.") from None
        yield
    finally:
        os.close(handle)


def follow_once(app: Flask) -> int:
    """One pass: apply what the outbox holds beyond this index's position; returns how many events were applied.
    A busy index or an unreachable database is logged and tried again on the next pass."""
    from .services import get_search_index

    with app.app_context():
        index = get_search_index()
        try:
            applied = apply_outbox(db.session, index)
            _record_position(app.config["INDEX_DIR"], index.position())
            return applied
        except (IndexBusy, SearchUnavailable, SQLAlchemyError) as problem:
            db.session.rollback()
            log.warning("search index follower: trying again shortly: %s", problem)
            return 0
        finally:
            db.session.remove()


def _record_position(index_dir: str, position: int) -> None:
    db.session.merge(OutboxCursor(name=cursor_name(index_dir), position=position, updated_at=utcnow()))
    db.session.commit()


def follow(app: Flask, stop: threading.Event) -> None:
    """Follow the outbox until ``stop`` is set: a pass every INDEX_FOLLOW_SECONDS, at once again while a pass
    found work (a new host catching up reads the outbox in batches)."""
    interval = float(app.config["INDEX_FOLLOW_SECONDS"])
    with only_follower(app.config["INDEX_DIR"]):
        while not stop.is_set():
            if follow_once(app) == 0:
                stop.wait(interval)
