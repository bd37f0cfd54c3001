"""Ratings and shortlists: the curators' pages for them, the rating form of the photo page and the bulk "put on a
shortlist" that the photo page, the review queue, the photo grid and the search results post to.

Only curators and admins come in (members: 403; visitors: to the login page). Views stay thin: every change goes
through archive.selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import selection
from ..auth import curators_only, visible_photo_or_404
from ..errors import Refusal
from ..errors_web import language
from ..models import Photo, Shortlist, db, parse_id
from ..selection import RATEABLE, RatingSummary, ShortlistRow

bp = Blueprint("selection", __name__)


# --------------------------------------------------------------------------------------------------------------------
# Helpers for templates elsewhere (the photo page, the grid, the search results, the queue)


@dataclass(frozen=True)
class PhotoPanel:
    """What the photo page's selection box shows a curator."""

    summary: RatingSummary
    rateable: bool
    on_lists: list[Shortlist]


def shortlist_choices() -> list[ShortlistRow]:
    """Every shortlist (for the "put on a list" select), once per request."""
    if "selection_choices" not in g:
        g.selection_choices = selection.list_shortlists(db.session)
    return list(g.selection_choices)


def photo_panel(photo: Photo) -> PhotoPanel:
    return PhotoPanel(summary=selection.rating_summaries(db.session, [photo.id], current_user)[photo.id],
                      rateable=photo.status in RATEABLE, on_lists=selection.shortlists_of(db.session, photo.id))


def rating_summaries(photos: Iterable[Photo]) -> dict[int, RatingSummary]:
    return selection.rating_summaries(db.session, [photo.id for photo in photos], current_user)


def stars_text(average: float | None) -> str:
    """4.333… -> "4,3" (German) / "4.3" (English)."""
    return "—" if average is None else format_decimal(round(average, 1), "0.0")


def here() -> str:
    """This page's address, for a form's ``next``."""
    return request.full_path.rstrip("?")


@bp.record_once
def _template_globals(state: BlueprintSetupState) -> None:
    """Globals, not a context processor: the shared macros (templates/selection/_macros.html) see them too."""
    state.app.jinja_env.globals.update(
        selection_panel=photo_panel, shortlist_choices=shortlist_choices, selection_summaries=rating_summaries,
        stars_text=stars_text, selection_here=here)


def safe_next(raw: str | None, fallback: str) -> str:
    """Only an address on this site: a path, not another host (``//evil``, ``/\\evil``, ``https://…``)."""
    if not raw or "\\" in raw or any(ord(ch) < 32 for ch in raw):
        return fallback
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return fallback
    return raw


def _refused(refusal: Refusal, back: str) -> Any:
    """A refusal of a form posted from another page: the reason, in both languages, and the way back."""
    db.session.rollback()
    return render_template("selection/refused.html", message=refusal.message(language()), refusal=refusal,
                           back=back), refusal.status


def _shortlist_or_404(shortlist_id: int) -> Shortlist:
    shortlist = db.session.get(Shortlist, shortlist_id)
    if shortlist is None:
        abort(404)
    return shortlist


def _count(n: int) -> str:
    return ngettext("%(num)d Foto", "%(num)d Fotos", n)


# --------------------------------------------------------------------------------------------------------------------
# Ratings


@bp.post("/curate/photos/<int:photo_id>/rating")
@curators_only
def rate(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id)
    back = safe_next(request.form.get("next"), url_for("photos.detail", photo_id=photo.id))
    try:
        summary = selection.rate(db.session, photo, current_user, selection.parse_stars(request.form.get("stars")))
    except Refusal as refusal:
        return _refused(refusal, back)
    if summary.mine is None:
        flash(_("Ihre Bewertung ist gelöscht."), "ok")
    else:
        flash(ngettext("Ihre Bewertung (%(stars)d von 5 Sternen) ist gespeichert. Durchschnitt %(average)s aus "
                       "%(num)d Bewertung.",
                       "Ihre Bewertung (%(stars)d von 5 Sternen) ist gespeichert. Durchschnitt %(average)s aus "
                       "%(num)d Bewertungen.", summary.count, stars=summary.mine, average=stars_text(summary.average)),
              "ok")
    return redirect(back)


# --------------------------------------------------------------------------------------------------------------------
# Shortlists


def _list_page(status: int = 200, error: Refusal | None = None, name: str = "") -> Any:
    return render_template("selection/lists.html", rows=selection.list_shortlists(db.session), name=name,
                           error=error and error.message(language()), error_en=error and error.en), status


@bp.route("/curate/shortlists", methods=["GET", "POST"])
@curators_only
def shortlists() -> Any:
    if request.method == "GET":
        return _list_page()
    name = request.form.get("name", "")
    try:
        shortlist = selection.create_shortlist(db.session, current_user, name)
    except Refusal as refusal:
        db.session.rollback()
        return _list_page(refusal.status, refusal, name)
    flash(_("Die Auswahlliste „%(name)s“ ist angelegt. Setzen Sie Fotos aus der Prüfliste, der Fotoübersicht, "
            "der Suche oder von der Fotoseite darauf.", name=shortlist.name), "ok")
    return redirect(url_for("selection.shortlist", shortlist_id=shortlist.id))


SORTS = {"added": _l("in der Reihenfolge des Hinzufügens"), "rating": _l("beste Bewertung zuerst")}


def _shortlist_page(shortlist: Shortlist, status: int = 200, error: Refusal | None = None,
                    rename: str | None = None) -> Any:
    sort = request.args.get("sort", "added")
    if sort not in SORTS:
        sort = "added"
    ids = selection.shortlist_photo_ids(db.session, shortlist)
    found = {p.id: p for p in db.session.scalars(select(Photo).where(Photo.id.in_(ids)).options(
        selectinload(Photo.derivatives), selectinload(Photo.association)))} if ids else {}
    photos = [found[i] for i in ids if i in found]
    summaries = selection.rating_summaries(db.session, ids, current_user)
    if sort == "rating":
        # Best average first; unrated last; more ratings before fewer at the same average.
        photos.sort(key=lambda p: (summaries[p.id].average is None, -(summaries[p.id].average or 0),
                                   -summaries[p.id].count))
    return render_template("selection/list.html", shortlist=shortlist, photos=photos, summaries=summaries,
                           sort=sort, sorts=SORTS, rename=shortlist.name if rename is None else rename,
                           publishable=sum(1 for p in photos if p.status == "published"),
                           error=error and error.message(language()), error_en=error and error.en), status


@bp.get("/curate/shortlists/<int:shortlist_id>")
@curators_only
def shortlist(shortlist_id: int) -> Any:
    return _shortlist_page(_shortlist_or_404(shortlist_id))


@bp.post("/curate/shortlists/<int:shortlist_id>/rename")
@curators_only
def rename(shortlist_id: int) -> Any:
    shortlist = _shortlist_or_404(shortlist_id)
    before, name = shortlist.name, request.form.get("name", "")
    try:
        selection.rename_shortlist(db.session, shortlist, current_user, name)
    except Refusal as refusal:
        db.session.rollback()
        return _shortlist_page(_shortlist_or_404(shortlist_id), refusal.status, refusal, rename=name)
    if shortlist.name != before:
        flash(_("„%(before)s“ heißt jetzt „%(after)s“.", before=before, after=shortlist.name), "ok")
    return redirect(url_for("selection.shortlist", shortlist_id=shortlist.id))


@bp.post("/curate/shortlists/<int:shortlist_id>/delete")
@curators_only
def delete(shortlist_id: int) -> Any:
    """First POST: the confirmation page (nothing changes). Second POST with confirm=1: the list is gone."""
    shortlist = _shortlist_or_404(shortlist_id)
    if request.form.get("confirm") != "1":
        return render_template("selection/delete.html", shortlist=shortlist,
                               count=selection.photo_count(db.session, shortlist))
    name = shortlist.name
    selection.delete_shortlist(db.session, shortlist, current_user)
    flash(_("Die Auswahlliste „%(name)s“ ist gelöscht. Die Fotos selbst bleiben im Archiv.", name=name), "ok")
    return redirect(url_for("selection.shortlists"))


@bp.post("/curate/shortlists/<int:shortlist_id>/remove")
@curators_only
def remove(shortlist_id: int) -> Any:
    shortlist = _shortlist_or_404(shortlist_id)
    try:
        ids = selection.selected_ids(request.form.getlist("photo_ids"))
    except Refusal as refusal:
        return _shortlist_page(shortlist, refusal.status, refusal)
    removed = selection.remove_photos(db.session, shortlist, current_user, ids)
    flash(_("%(photos)s von „%(name)s“ genommen. Die Fotos selbst bleiben im Archiv.", photos=_count(len(removed)),
            name=shortlist.name), "ok")
    return redirect(safe_next(request.form.get("next"), url_for("selection.shortlist", shortlist_id=shortlist.id)))


def _added_message(outcome: selection.Added) -> str:
    name = outcome.shortlist.name
    added = _count(len(outcome.added))
    parts = [_("Neue Auswahlliste „%(name)s“ angelegt: %(photos)s hinzugefügt", name=name, photos=added)
             if outcome.created else _("Auswahlliste „%(name)s“: %(photos)s hinzugefügt", name=name, photos=added)]
    if outcome.already:
        parts.append(ngettext("%(num)d war schon darauf", "%(num)d waren schon darauf", len(outcome.already)))
    if outcome.refused:
        parts.append(_("%(num)d ausgelassen (kein Bild möglich)", num=len(outcome.refused)))
    if outcome.missing:
        parts.append(_("%(num)d gibt es nicht mehr", num=len(outcome.missing)))
    return ", ".join(parts) + "."


@bp.post("/curate/shortlists/add")
@curators_only
def add() -> Any:
    """The bulk form of the photo page, the queue, the grid and the search: photo_ids + a list or a new name."""
    back = safe_next(request.form.get("next"), url_for("selection.shortlists"))
    try:
        ids = selection.selected_ids(request.form.getlist("photo_ids"))
        raw_id = request.form.get("shortlist_id", "")
        chosen = None
        if (shortlist_id := parse_id(raw_id)) is not None:
            chosen = db.session.get(Shortlist, shortlist_id)
            if chosen is None:
                raise Refusal("shortlist_gone", "Diese Auswahlliste gibt es nicht mehr. Bitte wählen Sie eine andere.",
                              "This shortlist no longer exists. Please choose another one.", status=409)
        outcome = selection.add_to_new_or_existing(db.session, current_user, ids, shortlist=chosen,
                                                   new_name=request.form.get("new_shortlist", ""))
    except Refusal as refusal:
        return _refused(refusal, back)
    flash(_added_message(outcome), "warning" if outcome.refused or outcome.missing else "ok")
    return redirect(back)
