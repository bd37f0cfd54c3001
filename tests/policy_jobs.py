"""Access rules for the failed-jobs page: only admins see it and start a failed job again."""

from __future__ import annotations

from typing import Any

from archive.models import FailedJob, PhotoStatus, db
from tests.access_rules import Rule, admin_may, admin_page

POLICY: dict[tuple[str, str], Rule] = {
    ("admin.jobs", "GET"): admin_page,
    ("admin.retry_job", "POST"): admin_may,
}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    """A failed processing job of one of the test photos, so that an admin's retry has something to retry."""
    failed = FailedJob(task="process_photo", args=f"[{photos[PhotoStatus.SUBMITTED]}]", error="StorageUnavailable",
                       attempts=5)
    db.session.add(failed)
    db.session.commit()
    return {"failed_id": failed.id}
