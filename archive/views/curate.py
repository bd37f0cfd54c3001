"""The curators' desk: the review queue with its bulk actions, the vocabulary (places and controlled tags) and
the audit log. Only curators and admins come in (members: 403; visitors: to the login page).

Views stay thin: every change goes through archive.workflow (the lifecycle, the rights bundle) or
archive.vocabulary (places, tags); the audit log is only read here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from .. import audit, selection, vocabulary, workflow
from ..auth import curators_only, visible_photo_or_404
from ..catalog import Page
from ..errors import Refusal
from ..errors_web import language
from ..i18n import local_time
from ..models import Association, AuditEvent, Licence, Photo, PhotoStatus, Place, Tag, User, db, parse_id
from ..services import get_jobs
from . import page_number, status_label

bp = Blueprint("curate", __name__)

S = PhotoStatus
PER_PAGE = 50



def _refusal_text(refusal: Refusal) -> str:
    return refusal.message(language())


# --------------------------------------------------------------------------------------------------------------------
# The review queue

# The queue's status filter: key -> (label, statuses). "open" is what waits for a curator.
QUEUE_FILTERS: dict[str, tuple[str, tuple[PhotoStatus, ...]]] = {
    "open": (_l("offen (eingereicht oder in Prüfung)"), (S.SUBMITTED, S.IN_REVIEW)),
    **{status.value: (None, (status,))  # None: the status's own label, read in the request's language
       for status in (S.SUBMITTED, S.IN_REVIEW, S.RETURNED, S.REJECTED, S.PUBLISHED, S.WITHDRAWN, S.PROCESSING,
                      S.FAILED)},
}


def queue_filters() -> dict[str, tuple[str, tuple[PhotoStatus, ...]]]:
    """The filters with their labels in this request's language."""
    return {key: (str(label) if label is not None else str(status_label(key)), statuses)
            for key, (label, statuses) in QUEUE_FILTERS.items()}


def review_queue(session: Session, *, statuses: Iterable[PhotoStatus], association: Association | None,
                 number: int, per_page: int = PER_PAGE) -> Page:
    """Photos in ``statuses``, oldest first (first come, first reviewed), one page of them."""
    # The statuses as literals in the SQL (not parameters), so that the planner can use the partial index of the
    # open photos (ix_photos_open_created) instead of walking every photo by date.
    query = select(Photo).where(Photo.status.in_(bindparam("statuses", list(statuses), expanding=True,
                                                           literal_execute=True)))
    if association is not None:
        query = query.where(Photo.association_id == association.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(-(-total // per_page), 1)
    number = min(max(number, 1), pages)
    photos = session.scalars(query.options(selectinload(Photo.derivatives), selectinload(Photo.association),
                                           selectinload(Photo.consents))
                             .order_by(Photo.created_at, Photo.id).limit(per_page).offset((number - 1) * per_page))
    return Page(list(photos), total, number, per_page)


def _queue_filters(args: Any) -> tuple[str, Association | None, int]:
    status_key = args.get("status") or "open"
    if status_key not in QUEUE_FILTERS:
        abort(400)
    association = None
    if slug := args.get("association"):
        association = db.session.scalar(select(Association).where(Association.slug == slug))
        if association is None:
            abort(404)
    return status_key, association, page_number()


def _queue_args(status_key: str, association: Association | None, number: int) -> dict[str, Any]:
    """The queue's address parameters, leaving out the defaults."""
    return {"status": status_key if status_key != "open" else None,
            "association": association.slug if association else None,
            "page": number if number > 1 else None}


def _controlled_tags() -> list[Tag]:
    return list(db.session.scalars(select(Tag).where(Tag.controlled.is_(True)).order_by(Tag.name)))


@bp.get("/curate")
@curators_only
def queue() -> Any:
    status_key, association, number = _queue_filters(request.args)
    page = review_queue(db.session, statuses=QUEUE_FILTERS[status_key][1], association=association, number=number)
    associations = db.session.scalars(select(Association).order_by(Association.name)).all()
    return render_template("curate/queue.html", page=page, status_key=status_key, association=association,
                           filters=queue_filters(), associations=associations, tags=_controlled_tags(),
                           gaps={photo.id: workflow.publication_gaps(photo) for photo in page.photos},
                           here=_queue_args(status_key, association, page.number))


# --------------------------------------------------------------------------------------------------------------------
# Bulk actions: choose, confirm, do

# action -> (button label, what happens to one photo). Lazy: they are read in the language of each request.
BULK_ACTIONS: dict[str, tuple[Any, Any]] = {
    "publish": (_l("Veröffentlichen"), _l("wird veröffentlicht")),
    "return": (_l("An den Verein zurückgeben"), _l("geht an den Verein zurück")),
    "reject": (_l("Ablehnen"), _l("wird abgelehnt")),
    "tag": (_l("Schlagwort ergänzen"), _l("bekommt das Schlagwort")),
}


def _cannot(action: str, status: str) -> str:
    """Why a photo in ``status`` cannot take ``action`` (whole sentences: each language words them its own way)."""
    if action == "publish":
        return _("ist „%(status)s“ und kann deshalb nicht veröffentlicht werden", status=status)
    if action == "return":
        return _("ist „%(status)s“ und kann deshalb nicht an den Verein zurückgegeben werden", status=status)
    return _("ist „%(status)s“ und kann deshalb nicht abgelehnt werden", status=status)


def _done_text(action: str, num: int) -> str:
    """ "3 veröffentlicht" """
    if action == "publish":
        return _("%(num)d veröffentlicht", num=num)
    if action == "return":
        return _("%(num)d an den Verein zurückgegeben", num=num)
    if action == "reject":
        return _("%(num)d abgelehnt", num=num)
    return _("%(num)d ergänzt", num=num)


def _gap_text(gap: workflow.Gap) -> str:
    return gap.en if language() == "en" else gap.de


@dataclass
class Planned:
    """What a bulk action will do to one photo, as far as can be told before doing it."""

    photo: Photo
    goes_through: bool
    note: str
    gaps: list[str] = field(default_factory=list)


def plan_bulk(photos: list[Photo], action: str, tag: Tag | None = None) -> list[Planned]:
    """The confirmation page's list: who goes through, and why the others will not (the same checks
    ``workflow.transition`` makes, and the publication gate's gaps)."""
    plan: list[Planned] = []
    for photo in photos:
        if action == "tag":
            assert tag is not None
            if any(t.id == tag.id for t in photo.tags):
                plan.append(Planned(photo, False, _("hat das Schlagwort „%(tag)s“ schon", tag=tag.name)))
            else:
                plan.append(Planned(photo, True, _("bekommt das Schlagwort „%(tag)s“", tag=tag.name)))
            continue
        sources, _target, _needs_reason = workflow.ACTIONS[action]
        if photo.status not in sources:
            plan.append(Planned(photo, False, _cannot(action, str(status_label(photo.status)))))
        elif action == "publish" and (gaps := workflow.publication_gaps(photo)):
            plan.append(Planned(photo, False, _("der Prüfschritt lässt es nicht durch, es fehlt:"),
                                [_gap_text(gap) for gap in gaps]))
        else:
            plan.append(Planned(photo, True, str(BULK_ACTIONS[action][1])))
    return plan


def _selected_photos(raw_ids: list[str]) -> list[Photo]:
    ids = selection.selected_ids(raw_ids)  # one reading of a bulk form's boxes, for the queue and the lists
    photos = db.session.scalars(select(Photo).where(Photo.id.in_(ids))
                                .options(selectinload(Photo.derivatives), selectinload(Photo.association),
                                         selectinload(Photo.consents), selectinload(Photo.tags))
                                .order_by(Photo.created_at, Photo.id)).all()
    if len(photos) != len(ids):
        abort(404)  # gone meanwhile (discarded), or never there
    return list(photos)


def _chosen_tag(raw: str | None) -> Tag:
    tag = db.session.get(Tag, tag_id) if (tag_id := parse_id(raw)) is not None else None
    if tag is None or not tag.controlled:
        raise Refusal("tag_missing", "Bitte wählen Sie ein Schlagwort aus der Liste.",
                      "Please choose a tag from the list.", status=422)
    return tag


def _summary(action: str, done: list[int], refused: list[tuple[int, Refusal]], already: list[int] | None = None,
             tag: str = "") -> str:
    """ "3 veröffentlicht, 1 abgelehnt vom Prüfschritt: „…“ kann noch nicht veröffentlicht werden. Es fehlt: …" """
    lang = language()
    done_text = _done_text(action, len(done))
    parts = [_("Schlagwort „%(tag)s“: %(done)s", tag=tag, done=done_text) if tag else done_text]
    if already:
        parts.append(_("%(num)d hatten es schon", num=len(already)))
    gate = [r for _id, r in refused if r.code == "not_publishable"]
    other = [r for _id, r in refused if r.code != "not_publishable"]
    if gate:
        parts.append(_("%(num)d abgelehnt vom Prüfschritt:", num=len(gate)) + " "
                     + " ".join(r.message(lang) for r in gate))
    if other:
        parts.append(_("%(num)d nicht möglich:", num=len(other)) + " " + " ".join(r.message(lang) for r in other))
    return ", ".join(parts)


@bp.post("/curate/bulk")
@curators_only
def bulk() -> Any:
    """First POST: the confirmation page (nothing changes). Second POST with confirm=1: done, back to the queue."""
    status_key, association, number = _queue_filters(request.args)
    back = _queue_args(status_key, association, number)
    action = request.form.get("action", "")
    if action not in BULK_ACTIONS:
        raise Refusal("unknown_action", "Bitte wählen Sie, was mit den Fotos geschehen soll.",
                      "Please choose what should happen to the photos.", status=400)
    photos = _selected_photos(request.form.getlist("photo_ids"))
    tag = _chosen_tag(request.form.get("tag_id")) if action == "tag" else None
    reason = request.form.get("reason", "").strip()
    needs_reason = action in workflow.ACTIONS and workflow.ACTIONS[action][2]
    error = None
    if needs_reason and not reason:
        error = Refusal("reason_missing", "Bitte geben Sie einen Grund an; der Verein sieht ihn.",
                        "Please give a reason; the association will see it.", status=422)
    if request.form.get("confirm") != "1" or error is not None:
        plan = plan_bulk(photos, action, tag)
        return render_template("curate/confirm.html", plan=plan, action=action, label=str(BULK_ACTIONS[action][0]),
                               tag=tag, reason=reason, needs_reason=needs_reason, back=back,
                               going=sum(1 for p in plan if p.goes_through),
                               error=_refusal_text(error) if error else None), (error.status if error else 200)
    if action == "tag":
        assert tag is not None
        tag_name = tag.name
        tagged = vocabulary.tag_photos(db.session, photos, tag, current_user)
        message = _summary(action, tagged.done, tagged.refused, tagged.already, tag=tag_name)
        refused = tagged.refused
    else:
        outcome = workflow.bulk_transition(db.session, photos, action, current_user, reason)
        message = _summary(action, outcome.done, outcome.refused)
        refused = outcome.refused
    get_jobs().outbox_changed()
    flash(message, "warning" if refused else "ok")
    return redirect(url_for("curate.queue", **back))


# --------------------------------------------------------------------------------------------------------------------
# Places


def _place_form() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in ("name", "city", "lat", "lon")}


@bp.route("/curate/places", methods=["GET", "POST"])
@curators_only
def places() -> Any:
    form, error, status = None, None, 200
    if request.method == "POST":
        form = _place_form()
        try:
            place = vocabulary.create_place(db.session, current_user, **form)
        except Refusal as refusal:
            db.session.rollback()
            error, status = refusal, refusal.status
        else:
            flash(_("„%(name)s“ steht jetzt in der Liste der Orte.", name=place.label), "ok")
            return redirect(url_for("curate.places"))
    return render_template("curate/places.html", rows=vocabulary.list_places(db.session), form=form,
                           error=error and _refusal_text(error), error_en=error and error.en), status


@bp.route("/curate/places/<int:place_id>", methods=["GET", "POST"])
@curators_only
def place_edit(place_id: int) -> Any:
    place = db.session.get(Place, place_id)
    if place is None:
        abort(404)
    form, error, status = None, None, 200
    if request.method == "POST":
        form = _place_form()
        try:
            vocabulary.change_place(db.session, place, current_user, **form)
        except Refusal as refusal:
            db.session.rollback()
            error, status = refusal, refusal.status
            place = db.session.get(Place, place_id)
        else:
            get_jobs().outbox_changed()
            flash(_("„%(name)s“ ist gespeichert.", name=place.label), "ok")
            return redirect(url_for("curate.places"))
    return render_template("curate/place_edit.html", place=place, form=form,
                           error=error and _refusal_text(error), error_en=error and error.en), status


# --------------------------------------------------------------------------------------------------------------------
# Controlled tags

KEYWORDS_SHOWN = 200


def _tags_page(status: int = 200, error: Refusal | None = None, form: dict[str, str] | None = None,
               rename: dict[int, str] | None = None) -> Any:
    return render_template("curate/tags.html", tags=vocabulary.list_tags(db.session),
                           keywords=vocabulary.list_tags(db.session, controlled=False, limit=KEYWORDS_SHOWN),
                           keyword_total=vocabulary.count_keywords(db.session), form=form or {},
                           rename=rename or {}, error=error and _refusal_text(error),
                           error_en=error and error.en), status


def _tag_or_404(tag_id: int) -> Tag:
    tag = db.session.get(Tag, tag_id)
    if tag is None:
        abort(404)
    return tag


@bp.route("/curate/tags", methods=["GET", "POST"])
@curators_only
def tags() -> Any:
    if request.method == "GET":
        return _tags_page()
    name = request.form.get("name", "")
    try:
        tag = vocabulary.create_tag(db.session, current_user, name)
    except Refusal as refusal:
        db.session.rollback()
        return _tags_page(refusal.status, refusal, form={"name": name})
    flash(_("„%(name)s“ steht jetzt in der Liste der Schlagwörter.", name=tag.name), "ok")
    return redirect(url_for("curate.tags"))


@bp.post("/curate/tags/<int:tag_id>")
@curators_only
def tag_rename(tag_id: int) -> Any:
    tag = _tag_or_404(tag_id)
    before, name = tag.name, request.form.get("name", "")
    try:
        vocabulary.rename_tag(db.session, tag, current_user, name)
    except Refusal as refusal:
        db.session.rollback()
        return _tags_page(refusal.status, refusal, rename={tag_id: name})
    get_jobs().outbox_changed()
    flash(_("„%(before)s“ heißt jetzt „%(after)s“.", before=before, after=tag.name), "ok")
    return redirect(url_for("curate.tags"))


@bp.post("/curate/tags/<int:tag_id>/promote")
@curators_only
def tag_promote(tag_id: int) -> Any:
    tag = _tag_or_404(tag_id)
    vocabulary.promote_keyword(db.session, tag, current_user)
    flash(_("„%(name)s“ steht jetzt in der Liste der Schlagwörter.", name=tag.name), "ok")
    return redirect(url_for("curate.tags"))


# --------------------------------------------------------------------------------------------------------------------
# The audit log: read only

ACTION_WORDS = {
    "photo.uploaded": _l("Foto hochgeladen"),
    "photo.processed": _l("Bilder erzeugt"),
    "photo.publish": _l("veröffentlicht"),
    "photo.return": _l("an den Verein zurückgegeben"),
    "photo.reject": _l("abgelehnt"),
    "photo.withdraw": _l("zurückgezogen"),
    "photo.review": _l("in Prüfung genommen"),
    "photo.resubmit": _l("erneut eingereicht"),
    "photo.reconsider": _l("zur erneuten Prüfung geöffnet"),
    "photo.rights_changed": _l("Rechteangaben geändert"),
    "photo.edited": _l("Angaben geändert"),
    "photo.owner_changed": _l("anderem Verein zugeordnet"),
    "photo.discarded": _l("Datei entfernt"),
    "photo.failed": _l("kein Bild möglich"),
    "photo.reprocessing_failed": _l("erneute Verarbeitung gescheitert"),
    "consent.recorded": _l("Einwilligung eingetragen"),
    "consent.withdrawn": _l("Einwilligung widerrufen"),
    "place.created": _l("Ort angelegt"),
    "place.changed": _l("Ort geändert"),
    "tag.created": _l("Schlagwort angelegt"),
    "tag.renamed": _l("Schlagwort umbenannt"),
    "tag.controlled": _l("Schlagwort in die Liste übernommen"),
    "user.created": _l("Konto angelegt"),
    "user.changed": _l("Konto geändert"),
    "user.password_changed": _l("Passwort geändert"),
    "user.password_reset": _l("Passwort über Link neu gesetzt"),
    "user.reset_link_created": _l("Link zum Passwort-Setzen erzeugt"),
    "user.one_time_password": _l("Einmal-Passwort gesetzt"),
    "user.sessions_ended": _l("alle Sitzungen beendet"),
    "user.session_ended": _l("ein Gerät abgemeldet"),
    "invitation.created": _l("Einladung erzeugt"),
    "invitation.used": _l("Einladung angenommen"),
    "invitation.withdrawn": _l("Einladung zurückgezogen"),
    "reset_link.withdrawn": _l("Passwort-Link zurückgezogen"),
    "token.created": _l("API-Schlüssel angelegt"),
    "token.revoked": _l("API-Schlüssel widerrufen"),
    "association.created": _l("Verein angelegt"),
    "association.changed": _l("Verein geändert"),
    "shortlist.created": _l("Auswahlliste angelegt"),
    "shortlist.renamed": _l("Auswahlliste umbenannt"),
    "shortlist.deleted": _l("Auswahlliste gelöscht"),
    "shortlist.photos_added": _l("Fotos auf Auswahlliste gesetzt"),
    "shortlist.photos_removed": _l("Fotos von Auswahlliste genommen"),
    "jury.created": _l("Jury-Runde angelegt"),
    "jury.closed": _l("Jury-Runde abgeschlossen"),
    "exhibition.created": _l("Ausstellung angelegt"),
    "exhibition.changed": _l("Ausstellung geändert"),
    "exhibition.published": _l("Ausstellung veröffentlicht"),
    "exhibition.unpublished": _l("Ausstellung zurückgezogen"),
    "export.requested": _l("Export angefordert"),
}

ACTION_PREFIXES = (
    ("", _l("alle Einträge")),
    ("photo.", _l("Fotos")),
    ("consent.", _l("Einwilligungen")),
    ("place.", _l("Orte")),
    ("tag.", _l("Schlagwörter")),
    ("user.", _l("Konten")),
    ("association.", _l("Vereine")),
    ("token.", _l("API-Schlüssel")),
    ("shortlist.", _l("Auswahllisten")),
    ("jury.", _l("Jury-Runden")),
    ("exhibition.", _l("Ausstellungen")),
)

FIELD_LABELS = {
    "status": _l("Status"), "title": _l("Titel"), "caption": _l("Bildunterschrift"), "alt_text": _l("Alternativtext"),
    "credit": _l("Fotograf:in"), "licence": _l("Lizenz"), "people": _l("Erkennbare Personen"),
    "minors": _l("Minderjährige"), "public_event_reason": _l("Begründung (öffentliche Veranstaltung)"),
    "place_id": _l("Ort"), "taken_at": _l("Aufgenommen"), "translations": _l("Übersetzungen"),
    "tags": _l("Schlagwörter"), "association": _l("Verein"), "name": _l("Name"), "city": _l("Stadt"),
    "lat": _l("Breitengrad"), "lon": _l("Längengrad"), "controlled": _l("in der Liste der Kurator:innen"),
    "active": _l("gültig"), "person": _l("Person"), "by_guardian": _l("von Erziehungsberechtigten"),
    "given_on": _l("Datum der Einwilligung"), "scopes": _l("gilt für"), "reference": _l("Ablage des Formulars"),
    "role": _l("Rolle"), "filename": _l("Datei"), "sha256": _l("Prüfsumme"), "derivatives": _l("Bildgrößen"),
    "automatic": _l("automatisch durch das Archiv"), "slug": _l("Adresse"), "venue": _l("Ort der Ausstellung"),
    "starts_on": _l("Beginn"), "ends_on": _l("Ende"), "intro": _l("Einführung"), "order": _l("Reihenfolge"),
    "added": _l("hinzugefügt"), "removed": _l("entfernt"), "source": _l("Quelle"), "photo_ids": _l("Fotos"),
    "photos": _l("Fotos"), "why": _l("Anlass"), "device": _l("Gerät"), "display_name": _l("Name"),
}

PEOPLE_WORDS = {
    "none": _l("keine erkennbaren Personen"), "consent": _l("mit Einwilligung"),
    "public_event": _l("öffentliche Veranstaltung (KUG §23)"), "unknown": _l("noch nicht angegeben"),
}
SCOPE_WORDS = {"web": _l("Website"), "exhibition": _l("Ausstellung"), "print": _l("Druck")}
SUBJECT_WORDS = {"shortlist": _l("Auswahlliste"), "jury_round": _l("Jury-Runde"), "exhibition": _l("Ausstellung"),
                 "place": _l("Ort"), "tag": _l("Schlagwort"), "user": _l("Konto"), "association": _l("Verein"),
                 "consent": _l("Einwilligung"), "token": _l("API-Schlüssel")}


@dataclass(frozen=True)
class Change:
    label: str
    before: str | None  # None: the entry keeps no value before (something new)
    after: str | None  # None: nothing after (something removed)


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    at: str
    who: str
    what: str
    subject: str
    changes: list[Change]
    reason: str
    extra: list[tuple[str, str]]
    photo_title: str = ""  # "" when the photo is gone (discarded) or the page is about one photo


def _iso_date(value: str, with_time: bool) -> str:
    """A date from the log as it was kept (a camera's time has no zone: shown as it is, in the page's language)."""
    from babel.dates import format_date, format_time
    from flask_babel import get_locale

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    locale = get_locale()
    day = format_date(parsed, "medium", locale=locale)
    return f"{day}, {format_time(parsed, 'short', locale=locale)}" if with_time else day


def shown_value(name: str, value: Any, places: dict[int, str]) -> str:
    """One value from the log as a person reads it."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("ja") if value else _("nein")
    if name == "status":
        return status_label(value)
    if name == "licence":
        try:
            return workflow.licence_label(Licence(value))
        except ValueError:
            return str(value)
    if name == "people":
        return str(PEOPLE_WORDS.get(str(value), str(value)))
    if name == "place_id" and isinstance(value, int):
        return places.get(value, _("Ort Nr. %(num)d (nicht mehr in der Liste)", num=value))
    if name in ("taken_at", "given_on") and isinstance(value, str):
        return _iso_date(value, with_time=name == "taken_at")
    if name == "scopes" and isinstance(value, list):
        return ", ".join(str(SCOPE_WORDS.get(str(v), str(v))) for v in value)
    if name == "translations" and isinstance(value, dict):
        return "; ".join(f"{lang}: " + " / ".join(str(part) for part in parts if part)
                         for lang, parts in sorted(value.items())) or "—"
    if name == "sha256" and isinstance(value, str):
        return value[:12] + "…"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return format_decimal(value, "0.######")
    return str(value)


def _subject(event: AuditEvent, names: dict[tuple[str, int], str]) -> str:
    if event.subject and event.subject_id is not None and event.subject != "consent":
        word = str(SUBJECT_WORDS.get(event.subject, event.subject))
        name = names.get((event.subject, event.subject_id))
        return (_("%(what)s „%(name)s“", what=word, name=name) if name
                else _("%(what)s Nr. %(num)d", what=word, num=event.subject_id))
    if event.subject == "consent" and event.subject_id is not None:
        return _("Einwilligung Nr. %(num)d", num=event.subject_id)
    return ""


def audit_rows(session: Session, events: list[AuditEvent], *, photo_titles: bool = False) -> list[AuditRow]:
    """The log's entries, in words: who, what, about what, each changed field before → after, and why."""
    titles: dict[int, str] = {}
    if photo_titles and (photo_ids := {e.photo_id for e in events if e.photo_id is not None}):
        titles = {p.id: p.display_title for p in session.scalars(select(Photo).where(Photo.id.in_(photo_ids)))}
    place_ids = {value for e in events for side in ("before", "after")
                 if isinstance(value := (e.detail.get(side) or {}).get("place_id"), int)}
    place_ids |= {e.subject_id for e in events if e.subject == "place" and e.subject_id is not None}
    places = {p.id: p.label for p in session.scalars(select(Place).where(Place.id.in_(place_ids)))} \
        if place_ids else {}
    names: dict[tuple[str, int], str] = {("place", pid): label for pid, label in places.items()}
    tag_ids = {e.subject_id for e in events if e.subject == "tag" and e.subject_id is not None}
    if tag_ids:
        names |= {("tag", t.id): t.name for t in session.scalars(select(Tag).where(Tag.id.in_(tag_ids)))}
    user_ids = {e.subject_id for e in events if e.subject == "user" and e.subject_id is not None}
    if user_ids:
        names |= {("user", u.id): u.username for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    rows = []
    for event in events:
        detail = dict(event.detail or {})
        before = detail.pop("before", None) or {}
        after = detail.pop("after", None) or {}
        reason = str(detail.pop("reason", "") or "")
        changes = [Change(str(FIELD_LABELS.get(name, name)),
                          shown_value(name, before[name], places) if name in before else None,
                          shown_value(name, after[name], places) if name in after else None)
                   for name in dict.fromkeys([*before, *after])]
        extra = [(str(FIELD_LABELS.get(name, name)), shown_value(name, value, places))
                 for name, value in detail.items()]
        rows.append(AuditRow(event=event, at=local_time(event.at),
                             who=event.actor.username if event.actor is not None else _("Archiv"),
                             what=str(ACTION_WORDS.get(event.action, event.action)), subject=_subject(event, names),
                             changes=changes, reason=reason, extra=extra,
                             photo_title=titles.get(event.photo_id, "") if event.photo_id is not None else ""))
    return rows


def _action_filter() -> str:
    prefix = request.args.get("action", "").strip()
    if not re.fullmatch(r"[a-z_.]{0,60}", prefix):
        abort(400)
    return prefix


@bp.get("/curate/audit")
@curators_only
def audit_log() -> Any:
    prefix = _action_filter()
    page = audit.read(db.session, action=prefix or None, page=page_number())
    prefixes = [(value, str(label)) for value, label in ACTION_PREFIXES]
    if prefix and prefix not in dict(prefixes):
        prefixes.append((prefix, str(ACTION_WORDS.get(prefix, prefix))))
    return render_template("curate/audit.html", rows=audit_rows(db.session, page.events, photo_titles=True),
                           page=page, photo=None,
                           prefix=prefix, prefixes=prefixes)


@bp.get("/curate/photos/<int:photo_id>/audit")
@curators_only
def photo_audit(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id, manage=True)
    prefix = _action_filter()
    page = audit.read(db.session, photo_id=photo.id, action=prefix or None,
                      page=page_number())
    return render_template("curate/audit.html", rows=audit_rows(db.session, page.events), page=page, photo=photo,
                           prefix=prefix, prefixes=None)
