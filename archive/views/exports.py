"""Exports of an exhibition (print package, catalogue, contact sheet): asking for one, watching it being made,
downloading it. Curators and admins only. The work is done by a background job (archive.exports.run_export)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.routing import BuildError

from .. import exports as service
from ..auth import curators_only
from ..errors import Refusal, Unavailable
from ..errors_web import language
from ..i18n import local_time
from ..models import Exhibition, Export, ExportStatus, db
from ..services import get_jobs, get_store
from ..storage import ObjectNotFound, StorageUnavailable, attachment_disposition

bp = Blueprint("exports", __name__)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    """For the export pages and for the exports panel that the exhibition editor includes."""
    return {"export_kind_label": lambda kind: service.kind_label(kind, language()),
            "export_status_label": lambda status: service.status_label(status, language()),
            "export_failure": service.failure_messages, "export_when": local_time,
            "exports_of": lambda exhibition: service.exports_of(db.session, exhibition),
            "export_exhibition_url": exhibition_url}


def exhibition_url(exhibition: Exhibition) -> str:
    """The exhibition's editor (the list of exhibitions while there is none)."""
    try:
        return url_for("exhibitions.editor", exhibition_id=exhibition.id)
    except BuildError:
        return url_for("exhibitions.manage")


def _base_url() -> str:
    """Where the QR codes point: BASE_URL, else the address this request came to (a job has no request)."""
    return str(current_app.config.get("BASE_URL") or "").rstrip("/") or request.url_root.rstrip("/")


@bp.post("/curate/exhibitions/<int:exhibition_id>/exports")
@curators_only
def create(exhibition_id: int) -> Any:
    exhibition = db.session.get(Exhibition, exhibition_id)
    if exhibition is None:
        abort(404)
    export = service.request_export(db.session, exhibition, request.form.get("kind", ""),
                                    request.form.get("language", "de"), current_user)
    export_id = export.id
    get_jobs().enqueue_export(export_id, _base_url())
    return redirect(url_for("exports.detail", export_id=export_id), code=303)


def _export_or_404(export_id: int) -> Export:
    export = db.session.get(Export, export_id)
    if export is None:
        abort(404)
    return export


@bp.get("/curate/exports/<int:export_id>")
@curators_only
def detail(export_id: int) -> Any:
    export = _export_or_404(export_id)
    stalled = service.stalled(export)
    waiting = export.status in (ExportStatus.QUEUED, ExportStatus.RUNNING) and not stalled
    response = current_app.make_response(render_template("exports/detail.html", export=export, waiting=waiting,
                                                          stalled=stalled, filename=service.download_name(export)))
    response.headers["Cache-Control"] = "no-store"  # the page shows progress: always the current state
    return response


@bp.get("/curate/exports/<int:export_id>/download")
@curators_only
def download(export_id: int) -> Any:
    export = _export_or_404(export_id)
    if export.status != ExportStatus.DONE or not export.key:
        raise Refusal("export_not_ready", "Dieser Export ist noch nicht fertig (oder fehlgeschlagen).",
                      "This export is not finished (or it failed).", status=409)
    if service.outdated(db.session, export):
        raise Refusal("export_outdated",
                      "Seit dieser Export gemacht wurde, hat sich der Status oder eine Einwilligung eines Fotos "
                      "geändert. Bitte erstellen Sie den Export neu.",
                      "A photo's status or consent changed after this export was made. Please make the export "
                      "again.", status=410)
    name = service.download_name(export)
    store = get_store()
    if current_app.config["S3_REDIRECT_DOWNLOADS"]:
        url = store.download_url(export.key, name, expires=300)
        if url:  # S3: a short-lived signed link; the bucket stays private
            return redirect(url, code=303)
    try:
        chunks = store.iter_chunks(export.key)
    except ObjectNotFound:
        raise Refusal("export_gone", "Die Exportdatei ist nicht mehr im Speicher. Bitte erstellen Sie den Export neu.",
                      "The export file is no longer in storage. Please make the export again.", status=410) from None
    except StorageUnavailable as error:
        raise Unavailable("storage_unavailable",
                          "Der Fotospeicher ist gerade nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.",
                          "The photo storage cannot be reached right now. Please try again shortly.") from error
    response = Response(chunks, mimetype=service.CONTENT_TYPES[export.kind])
    if export.size_bytes is not None:
        response.content_length = export.size_bytes
    response.headers["Content-Disposition"] = attachment_disposition(name)
    response.headers["Cache-Control"] = "private, no-store"
    return response
