"""Per-app services (object store, jobs, search index, the gallery's cache), built once and kept in app.extensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from .storage import ObjectStore, make_store

if TYPE_CHECKING:
    from .jobs import Jobs
    from .outbox_cache import OutboxCache
    from .search import SearchIndex


def get_store() -> ObjectStore:
    ext = current_app.extensions
    if "brucken.store" not in ext:
        ext["brucken.store"] = make_store(current_app.config)
    return ext["brucken.store"]


def get_jobs() -> Jobs:
    ext = current_app.extensions
    if "brucken.jobs" not in ext:
        from .jobs import Jobs, make_huey

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        ext["brucken.jobs"] = Jobs(app, make_huey(current_app.config))
    return ext["brucken.jobs"]


def get_search_index() -> SearchIndex:
    """One SearchIndex per process: it keeps its searcher and refreshes it when the index changed."""
    ext = current_app.extensions
    if "brucken.search" not in ext:
        from pathlib import Path

        from .search import SearchIndex

        ext["brucken.search"] = SearchIndex(Path(current_app.config["INDEX_DIR"]),
                                            lock_timeout=float(current_app.config["INDEX_LOCK_SECONDS"]))
    return ext["brucken.search"]


def get_gallery_cache() -> OutboxCache:
    """The public gallery's facet counts, kept per process until the archive changes."""
    ext = current_app.extensions
    if "brucken.gallery_cache" not in ext:
        from .outbox_cache import OutboxCache

        ext["brucken.gallery_cache"] = OutboxCache()
    return ext["brucken.gallery_cache"]
