"""An association's photos: the grid and the photo page, for people who are logged in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import workflow
from ..auth import can_manage, visible_photo_or_404
from ..catalog import association_photos, being_processed, grid_association
from ..errors import Refusal
from ..errors_web import language
from ..models import Association, Consent, Photo, PhotoStatus, Place, Tag, db, utcnow
from ..photo_forms import consent_fields, rights_change
from ..reconcile import discard_photo
from ..services import get_jobs, get_store
from . import page_number

bp = Blueprint("photos", __name__)

@bp.get("/photos")
@login_required
def grid() -> Any:
    try:
        association = grid_association(db.session, current_user, request.args.get("association"))
    except LookupError:
        abort(404)
    except PermissionError:
        abort(403)
    page = association_photos(db.session, association, page_number())
    associations = (db.session.scalars(select(Association).order_by(Association.name)).all()
                    if current_user.sees_everything else [])
    return render_template("photos/grid.html", page=page, association=association,
                           processing=page.still_processing(_fresh_since()), associations=associations)


@bp.get("/photos/<int:photo_id>")
def detail(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id)
    manage = can_manage(current_user, photo)
    actions = [action for action, (sources, _target, _reason) in workflow.ACTIONS.items()
               if photo.status in sources and (workflow.is_staff(current_user)
                                               or (action in workflow.MEMBER_ACTIONS and manage))]
    associations = (db.session.scalars(select(Association).order_by(Association.name)).all()
                    if workflow.is_staff(current_user) else [])
    from ..browse import more_from_association, more_from_place  # the public rows under the photo

    public = photo.status == PhotoStatus.PUBLISHED
    return render_template("photos/detail.html", photo=photo, processing=being_processed(photo, _fresh_since()),
                           manage=manage, actions=actions, associations=associations,
                           gaps=workflow.publication_gaps(photo) if manage else [],
                           licence=workflow.LICENCES.get(photo.licence),
                           more_place=more_from_place(db.session, photo) if public else [],
                           more_association=more_from_association(db.session, photo) if public else [])


def _fresh_since() -> datetime:
    """Photos processing since before this are stuck: pages stop refreshing for them."""
    return utcnow() - timedelta(minutes=int(current_app.config["STALE_MINUTES"]))


@bp.post("/photos/<int:photo_id>/discard")
@login_required
def discard(photo_id: int) -> Any:
    """A file no image could be made from can be removed by those who manage it. Other photos go through
    the curators' workflow, not this button."""
    photo = visible_photo_or_404(photo_id, manage=True)
    if photo.status != PhotoStatus.FAILED:
        raise Refusal("not_discardable",
                      "Nur Dateien, aus denen kein Bild entstehen konnte, lassen sich hier entfernen.",
                      "Only files no image could be made from can be removed here.", status=409)
    slug = photo.association.slug
    discard_photo(db.session, get_store(), photo, reason="removed by its owner after failed processing",
                  actor_id=current_user.id)
    get_jobs().outbox_changed()
    flash(_("Die Datei wurde entfernt."), "ok")
    return redirect(url_for("photos.grid", association=slug if current_user.sees_everything else None))


# --------------------------------------------------------------------------------------------------------------------
# Editing: the words and the rights bundle, consent, the lifecycle. Each route hands over to archive.workflow.


def _edit_page(photo: Photo, status: int = 200) -> Any:
    places = db.session.scalars(select(Place).order_by(Place.city, Place.name)).all()
    vocabulary = db.session.scalars(select(Tag).where(Tag.controlled.is_(True)).order_by(Tag.name)).all()
    return render_template("photos/edit.html", photo=photo, places=places, vocabulary=vocabulary,
                           form=request.form if request.method == "POST" else None,
                           languages=[lang for lang in workflow.LANGUAGES if lang != "de"],
                           gaps=workflow.publication_gaps(photo)), status


@bp.route("/photos/<int:photo_id>/edit", methods=["GET", "POST"])
@login_required
def edit(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id, manage=True)
    if not workflow.can_edit(current_user, photo):
        raise Refusal("published_locked", "Veröffentlichte Fotos ändern nur Kuratorinnen und Kuratoren.",
                      "Only curators change published photos.", status=403)
    if request.method == "GET":
        return _edit_page(photo)
    try:
        workflow.update_photo(db.session, photo, rights_change(request.form), current_user)
    except Refusal as refusal:
        db.session.rollback()
        flash(refusal.message(language()), "error")
        return _edit_page(db.session.get(Photo, photo_id), refusal.status)
    get_jobs().outbox_changed()
    flash(_("Gespeichert."), "ok")
    return redirect(url_for("photos.detail", photo_id=photo.id))


@bp.post("/photos/<int:photo_id>/consents")
@login_required
def add_consent(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id, manage=True)
    workflow.record_consent(db.session, photo, current_user, **consent_fields(request.form))
    flash(_("Die Einwilligung ist eingetragen."), "ok")
    return redirect(url_for("photos.edit", photo_id=photo.id) + "#consent")


@bp.post("/photos/<int:photo_id>/consents/<int:consent_id>/withdraw")
@login_required
def withdraw_consent(photo_id: int, consent_id: int) -> Any:
    photo = visible_photo_or_404(photo_id, manage=True)
    consent = db.session.get(Consent, consent_id)
    if consent is None or consent.photo_id != photo.id:
        abort(404)
    was_public = photo.status == PhotoStatus.PUBLISHED
    workflow.withdraw_consent(db.session, photo, consent, current_user, request.form.get("reason", ""))
    get_jobs().outbox_changed()
    if was_public and photo.status != PhotoStatus.PUBLISHED:
        flash(_("Die Einwilligung ist widerrufen; das Foto ist nicht mehr öffentlich."), "ok")
    else:
        flash(_("Die Einwilligung ist widerrufen."), "ok")
    return redirect(url_for("photos.detail", photo_id=photo.id))


@bp.post("/photos/<int:photo_id>/status")
@login_required
def change_status(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id, manage=True)
    action = request.form.get("action", "")
    workflow.transition(db.session, photo, action, current_user, request.form.get("reason", ""))
    get_jobs().outbox_changed()
    flash(_("Erledigt: %(action)s.", action=workflow.action_label(action)), "ok")
    return redirect(url_for("photos.detail", photo_id=photo.id))


@bp.post("/photos/<int:photo_id>/owner")
@login_required
def change_owner(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id, manage=True)
    association = db.session.scalar(select(Association).where(Association.slug == request.form.get("association")))
    if association is None:
        raise Refusal("association_missing", "Bitte wählen Sie einen Verein.", "Please choose an association.",
                      status=422)
    workflow.change_owner(db.session, photo, association, current_user)
    get_jobs().outbox_changed()
    flash(_("Das Foto gehört jetzt: %(name)s.", name=association.name), "ok")
    return redirect(url_for("photos.detail", photo_id=photo.id))
