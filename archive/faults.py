"""Crash points for the crash-consistency tests: nothing happens unless a test asks for it.

The pipeline calls ``crash_point("ingest.stored")`` and the like between its steps. When the environment
variable ``BRUCKEN_CRASH_AT`` names that point, the process kills itself with SIGKILL there, exactly as the
kernel's OOM killer or a power cut would: no ``finally``, no rollback, no flush. The tests then restart the
archive, run ``brucken reconcile`` and check that database, object store and index agree again.

Production never sets the variable, and the check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "BRUCKEN_CRASH_AT"

# Every point the pipeline offers, in the order a photo passes them (the tests loop over this list).
POINTS = (
    "ingest.staged",  # the upload is on the staging disk, nothing else exists
    "ingest.stored",  # the original is in the object store, no row points to it yet
    "ingest.recorded",  # the row is committed, processing not enqueued yet
    "processing.derivatives_stored",  # thumbnails and previews stored, the row does not point to them yet
    "processing.recorded",  # the row points to the new derivatives, replaced ones not yet deleted
    "indexing.applied",  # the index has the batch, the outbox position moves with it (one commit)
)


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, if the crash tests asked for ``name``."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
