"""Answers computed from the published photos (the gallery's facet counts), kept until the archive changes.

Every change that can alter what visitors see writes an outbox event in the same transaction as the change
(publication, withdrawal, consent, tags, places, associations, deletion), so the newest outbox id is a version
number of the public archive. One read of ``max(outbox.id)`` on the primary key then stands in for GROUP BYs over
every published photo (bench/SCALE_NOTE.md: the overview's counts took 945 ms at p95 with 100 000 photos on
PostgreSQL). A maximum age bounds what an edit that writes no event could leave out of date.

Each process keeps its own answers; a process that has not seen an answer yet computes it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import OutboxEvent

T = TypeVar("T")
MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True)
class _Kept:
    position: int | None
    computed_at: float
    value: Any


class OutboxCache:
    """Named answers, each recomputed when the outbox has a newer event than when it was computed, or when it is
    older than ``max_age`` seconds."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._kept: dict[str, _Kept] = {}

    def get(self, session: Session, name: str, compute: Callable[[Session], T]) -> T:
        # The position is read before computing: a change committed in between makes the answer newer than its
        # position says, so the next request computes again. Read after, an answer could miss a change for good.
        position = session.scalar(select(func.max(OutboxEvent.id)))
        now = self._clock()
        kept = self._kept.get(name)
        if kept is not None and kept.position == position and now - kept.computed_at < self._max_age:
            return kept.value  # type: ignore[no-any-return]
        value = compute(session)
        self._kept[name] = _Kept(position, now, value)  # one assignment: threads of a worker may race harmlessly
        return value
