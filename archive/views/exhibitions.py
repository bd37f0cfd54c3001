"""Exhibitions: the curators' list and editor (fields, photos, captions, order, publishing), and the public pages
(/ausstellungen and /ausstellungen/<slug>).

Views stay thin: every change goes through archive.exhibitions. The public pages show only photos that are
published at the moment of the request (the query filters by status), and a draft is a 404 for everyone but
curators and admins.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import exhibitions as service
from .. import workflow
from ..auth import curators_only
from ..errors import Refusal
from ..errors_web import language, wants_json
from ..models import Exhibition, ExhibitionStatus, JuryRound, Shortlist, db, parse_id

bp = Blueprint("exhibitions", __name__)

FIELD_NAMES = ("title", "venue", "starts_on", "ends_on", "intro")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"date_range": date_range, "attribution": workflow.attribution, "licences": workflow.LICENCES}


def date_range(starts: date | None, ends: date | None) -> str:
    """ "12. Mai – 30. Juni 2026" / "May 12 – June 30, 2026", "ab …" / "from …", "bis …" / "until …" or ""."""
    from babel.dates import format_interval
    from flask_babel import get_locale

    if starts and ends:
        if starts == ends:
            return format_date(starts, "long")
        if starts.year != ends.year:
            return f"{format_date(starts, 'long')} – {format_date(ends, 'long')}"
        return format_interval(starts, ends, "yMMMMd", locale=get_locale()).replace("\u2009", " ")
    if starts:
        return _("ab %(date)s", date=format_date(starts, "long"))
    if ends:
        return _("bis %(date)s", date=format_date(ends, "long"))
    return ""


def _added_message(outcome: service.Added) -> str:
    """What adding photos did, in the page's language (archive.exhibitions' own summary is German)."""
    english = language() == "en"
    parts = [ngettext("%(num)d Foto hinzugefügt", "%(num)d Fotos hinzugefügt", len(outcome.added))]
    if outcome.already:
        parts.append(ngettext("%(num)d war schon in der Ausstellung", "%(num)d waren schon in der Ausstellung",
                              len(outcome.already)))
    for photo, reason, reason_en in outcome.refused:
        parts.append(_("„%(title)s“ (Nr. %(num)d) %(reason)s", title=photo.display_title, num=photo.id,
                       reason=reason_en if english else reason))
    if outcome.missing:
        parts.append(_("diese Nummern gibt es nicht: %(numbers)s",
                       numbers=", ".join(str(n) for n in outcome.missing)))
    return "; ".join(parts) + "."


def _fields() -> service.ExhibitionFields:
    return service.ExhibitionFields(**{name: request.form.get(name, "") for name in FIELD_NAMES})


def _exhibition_or_404(exhibition_id: int) -> Exhibition:
    exhibition = db.session.get(Exhibition, exhibition_id)
    if exhibition is None:
        abort(404)
    return exhibition


def _text(refusal: Refusal) -> str:
    return refusal.message(language())


# --------------------------------------------------------------------------------------------------------------------
# The curators' list


def _manage_page(status: int = 200, error: Refusal | None = None, form: dict[str, str] | None = None) -> Any:
    return render_template("exhibitions/manage.html", rows=service.all_exhibitions(db.session), form=form,
                           error=error and _text(error), error_en=error and error.en), status


@bp.get("/curate/exhibitions")
@curators_only
def manage() -> Any:
    return _manage_page()


@bp.post("/curate/exhibitions")
@curators_only
def create() -> Any:
    try:
        exhibition = service.create_exhibition(db.session, current_user, _fields())
    except Refusal as refusal:
        db.session.rollback()
        return _manage_page(refusal.status, refusal, form={name: request.form.get(name, "") for name in FIELD_NAMES})
    flash(_("Die Ausstellung „%(title)s“ ist angelegt. Fügen Sie jetzt Fotos hinzu.", title=exhibition.title), "ok")
    return redirect(url_for("exhibitions.editor", exhibition_id=exhibition.id))


# --------------------------------------------------------------------------------------------------------------------
# The editor


def _editor(exhibition: Exhibition, status: int = 200, *, error: Refusal | None = None, error_at: str = "",
            form: dict[str, str] | None = None) -> Any:
    shortlists = db.session.scalars(select(Shortlist).order_by(Shortlist.name)).all()
    rounds = service.rounds_with_selection(db.session)
    rounds.sort(key=lambda row: row[0].exhibition_id != exhibition.id)  # this exhibition's rounds first
    items = service.editor_items(db.session, exhibition)
    return render_template("exhibitions/editor.html", exhibition=exhibition, items=items,
                           hidden=sum(1 for i in items if not i.public), shortlists=shortlists, rounds=rounds,
                           intro_html=service.render_intro(exhibition.intro), form=form,
                           error=error and _text(error), error_en=error and error.en, error_at=error_at), status


def _back(exhibition: Exhibition, anchor: str = "") -> Any:
    return redirect(url_for("exhibitions.editor", exhibition_id=exhibition.id) + (f"#{anchor}" if anchor else ""))


@bp.get("/curate/exhibitions/<int:exhibition_id>")
@curators_only
def editor(exhibition_id: int) -> Any:
    return _editor(_exhibition_or_404(exhibition_id))


@bp.post("/curate/exhibitions/<int:exhibition_id>")
@curators_only
def update(exhibition_id: int) -> Any:
    exhibition = _exhibition_or_404(exhibition_id)
    try:
        service.update_exhibition(db.session, exhibition, current_user, _fields())
    except Refusal as refusal:
        db.session.rollback()
        return _editor(_exhibition_or_404(exhibition_id), refusal.status, error=refusal, error_at="fields",
                       form={name: request.form.get(name, "") for name in FIELD_NAMES})
    flash(_("Die Angaben sind gespeichert."), "ok")
    return _back(exhibition)


def _photo_numbers(raw: str) -> list[int]:
    """ "12, 15 40;41" -> [12, 15, 40, 41]; also "Nr. 12" or "#12"."""
    words = raw.replace(",", " ").replace(";", " ").replace("#", " ").replace("Nr.", " ").split()
    ids = [parse_id(word) for word in words]
    if None in ids:
        raise Refusal("photo_numbers", "Bitte geben Sie Fotonummern als Zahlen an, getrennt durch Kommas "
                      "(z. B. 12, 15, 40).", "Please give photo numbers as digits, separated by commas "
                      "(e.g. 12, 15, 40).", status=422)
    return [i for i in ids if i is not None]


@bp.post("/curate/exhibitions/<int:exhibition_id>/photos")
@curators_only
def add_photos(exhibition_id: int) -> Any:
    """Adds the photos of a shortlist, a jury round's selection, or photos by number (also several
    ``photo_ids`` fields, as other pages may send them)."""
    exhibition = _exhibition_or_404(exhibition_id)
    source = request.form.get("source", "ids")
    try:
        if source == "shortlist":
            shortlist = db.session.get(Shortlist, request.form.get("shortlist_id", type=int) or 0)
            if shortlist is None:
                raise Refusal("shortlist_missing", "Bitte wählen Sie eine Auswahlliste.",
                              "Please choose a shortlist.", status=422)
            outcome = service.add_from_shortlist(db.session, exhibition, shortlist, current_user)
        elif source == "round":
            jury_round = db.session.get(JuryRound, request.form.get("round_id", type=int) or 0)
            if jury_round is None:
                raise Refusal("round_missing", "Bitte wählen Sie eine Jury-Runde.", "Please choose a jury round.",
                              status=422)
            outcome = service.add_from_round(db.session, exhibition, jury_round, current_user)
        else:
            ids = [n for raw in request.form.getlist("photo_ids") for n in _photo_numbers(raw)]
            outcome = service.add_photo_ids(db.session, exhibition, ids, current_user)
    except Refusal as refusal:
        db.session.rollback()
        return _editor(_exhibition_or_404(exhibition_id), refusal.status, error=refusal, error_at="add")
    flash(_added_message(outcome), "warning" if outcome.refused or outcome.missing else "ok")
    return _back(exhibition, "fotos")


@bp.post("/curate/exhibitions/<int:exhibition_id>/items/<int:item_id>/caption")
@curators_only
def caption(exhibition_id: int, item_id: int) -> Any:
    exhibition = _exhibition_or_404(exhibition_id)
    item = service.set_caption(db.session, exhibition, item_id, request.form.get("caption", ""), current_user)
    flash(_("Die Bildunterschrift für „%(title)s“ ist gespeichert.", title=item.photo.display_title), "ok")
    return _back(exhibition, f"item-{item.id}")


@bp.post("/curate/exhibitions/<int:exhibition_id>/items/<int:item_id>/move")
@curators_only
def move(exhibition_id: int, item_id: int) -> Any:
    exhibition = _exhibition_or_404(exhibition_id)
    direction = request.form.get("direction", "")
    step = {"up": -1, "down": 1}.get(direction)
    if step is None:
        raise Refusal("move_direction", "Bitte nach oben oder nach unten verschieben.", "Please move up or down.",
                      status=400)
    item = service.item_of(exhibition, item_id)
    before = item.position
    position = service.move_item(db.session, exhibition, item_id, step, current_user)
    total = len(exhibition.items)
    title = item.photo.display_title
    if position == before:
        message = (_("„%(title)s“ steht schon an erster Stelle.", title=title) if step < 0
                   else _("„%(title)s“ steht schon an letzter Stelle.", title=title))
    else:
        message = _("„%(title)s“ ist jetzt an Position %(position)s von %(total)s.", title=title, position=position,
                    total=total)
    if wants_json():
        return jsonify({"order": [i.id for i in exhibition.items], "message": message})
    flash(message, "ok")
    return _back(exhibition, f"item-{item_id}")


@bp.post("/curate/exhibitions/<int:exhibition_id>/order")
@curators_only
def order(exhibition_id: int) -> Any:
    """The whole order at once: JSON ``{"item_ids": [...]}`` from drag and drop, or ``item_ids`` form fields."""
    exhibition = _exhibition_or_404(exhibition_id)
    payload = request.get_json(silent=True) if request.is_json else None
    raw = payload.get("item_ids") if isinstance(payload, dict) else request.form.getlist("item_ids")
    if not isinstance(raw, list):
        raise Refusal("order_missing", "Die neue Reihenfolge fehlt.", "The new order is missing.", status=400)
    try:
        ids = [int(value) for value in raw]
    except (TypeError, ValueError):
        raise Refusal("order_malformed", "Die neue Reihenfolge ist unlesbar. Bitte laden Sie die Seite neu.",
                      "The new order cannot be read. Please reload the page.", status=400) from None
    new_order = service.set_order(db.session, exhibition, ids, current_user)
    message = _("Die neue Reihenfolge ist gespeichert.")
    if request.is_json or wants_json():
        return jsonify({"order": new_order, "message": message})
    flash(message, "ok")
    return _back(exhibition, "fotos")


@bp.post("/curate/exhibitions/<int:exhibition_id>/items/<int:item_id>/remove")
@curators_only
def remove(exhibition_id: int, item_id: int) -> Any:
    exhibition = _exhibition_or_404(exhibition_id)
    photo = service.remove_item(db.session, exhibition, item_id, current_user)
    flash(_("„%(title)s“ ist nicht mehr in der Ausstellung. Das Foto selbst bleibt im Archiv.",
            title=photo.display_title), "ok")
    return _back(exhibition, "fotos")


@bp.post("/curate/exhibitions/<int:exhibition_id>/publish")
@curators_only
def publish(exhibition_id: int) -> Any:
    exhibition = _exhibition_or_404(exhibition_id)
    try:
        service.publish(db.session, exhibition, current_user)
    except Refusal as refusal:
        db.session.rollback()
        return _editor(_exhibition_or_404(exhibition_id), refusal.status, error=refusal, error_at="status")
    flash(_("„%(title)s“ ist veröffentlicht.", title=exhibition.title), "ok")
    return _back(exhibition)


@bp.post("/curate/exhibitions/<int:exhibition_id>/unpublish")
@curators_only
def unpublish(exhibition_id: int) -> Any:
    exhibition = _exhibition_or_404(exhibition_id)
    service.unpublish(db.session, exhibition, current_user)
    flash(_("„%(title)s“ ist wieder ein Entwurf; die öffentliche Seite ist nicht mehr erreichbar.",
            title=exhibition.title), "ok")
    return _back(exhibition)


# --------------------------------------------------------------------------------------------------------------------
# The public pages


@bp.get("/ausstellungen")
def public_index() -> Any:
    return render_template("exhibitions/index.html", rows=service.published_exhibitions(db.session))


@bp.get("/ausstellungen/<slug>")
def public_page(slug: str) -> Any:
    """A published exhibition for everyone; a draft only for curators and admins (404 for everyone else: a draft's
    existence does not leak)."""
    exhibition = service.exhibition_by_slug(db.session, slug)
    if exhibition is None:
        abort(404)
    draft = exhibition.status != ExhibitionStatus.PUBLISHED
    if draft and not workflow.is_staff(current_user):
        abort(404)
    items = service.public_items(db.session, exhibition)
    return render_template("exhibitions/page.html", exhibition=exhibition, items=items, draft=draft,
                           hidden=len(exhibition.items) - len(items) if workflow.is_staff(current_user) else 0,
                           intro_html=service.render_intro(exhibition.intro))
