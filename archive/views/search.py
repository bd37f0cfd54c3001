"""Search: the page for people and the JSON endpoint for scripts. Both see only what the caller may."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import workflow
from ..errors import Unavailable
from ..errors_web import language
from ..indexing import not_yet_hidden
from ..models import Association, Licence, Photo, PhotoStatus, db
from ..search import SearchQuery, SearchResult, SearchUnavailable, Viewer, parse_query
from ..services import get_search_index

bp = Blueprint("search", __name__)

# URL parameter -> facet name; the page and the API accept the same ones.
FILTERS = ("association", "partner_city", "place", "tag", "photographer", "licence", "year", "status")
FACET_LABELS = [("association", _l("Verein")), ("partner_city", _l("Partnerstadt")), ("place", _l("Ort / Brücke")),
                ("year", _l("Jahr")), ("tag", _l("Schlagwort")), ("photographer", _l("Fotograf:in")),
                ("licence", _l("Lizenz"))]


def search_unavailable() -> Unavailable:
    return Unavailable("search_unavailable",
                       "Die Suche wird gerade neu aufgebaut. Bitte versuchen Sie es in ein paar Minuten noch einmal.",
                       "Search is being rebuilt. Please try again in a few minutes.", retry_after=60)


def viewer() -> Viewer:
    if not current_user.is_authenticated:
        return Viewer()
    association = current_user.association.slug if current_user.association else None
    return Viewer(sees_everything=current_user.sees_everything, association=association)


def _active() -> dict[str, list[str]]:
    return {name: values for name in FILTERS if (values := [v for v in request.args.getlist(name) if v])}


def _query(active: dict[str, list[str]]) -> SearchQuery:
    years = None
    if active.get("year"):
        picked = sorted(int(y) for y in active["year"] if y.isascii() and y.isdigit())
        years = (picked[0], picked[-1]) if picked else None
    return parse_query(
        request.args.get("q", ""),
        **{name: tuple(values) for name, values in active.items() if name != "year"},
        years=years,
        sort=request.args.get("sort", "relevance"),
        page=max(request.args.get("page", 1, type=int) or 1, 1),
    )


def _run() -> tuple[SearchResult, dict[str, list[str]]]:
    active = _active()
    seen_by = viewer()
    hidden = None if seen_by.sees_everything else functools.partial(not_yet_hidden, db.session, seen_by)
    return get_search_index().search(_query(active), seen_by, hidden), active


@bp.get("/search")
def page() -> Any:
    try:
        result, active = _run()
    except SearchUnavailable:
        # The search page itself stays, with the reason where the hits would be.
        refusal = search_unavailable()
        return (render_template("search/page.html", result=None, unavailable=refusal.message(language()),
                                raw=request.args.get("q", ""), active={}, sort="relevance"),
                refusal.status, {"Retry-After": str(refusal.retry_after)})
    photos = {p.id: p for p in db.session.scalars(
        select(Photo).where(Photo.id.in_([h.id for h in result.hits])).options(selectinload(Photo.derivatives)))}
    names = {slug: name for slug, name in db.session.execute(select(Association.slug, Association.name))}

    def toggle(name: str, value: str) -> str:
        args = {k: list(v) for k, v in active.items()}
        values = args.setdefault(name, [])
        values.remove(value) if value in values else values.append(value)
        return _url(args)

    def page_url(number: int) -> str:
        return _url(dict(active), page=number)

    def facet_value(name: str, value: str) -> str:
        if name == "licence" and value == workflow.licence_label(Licence.PROJECT_ONLY):
            return str(workflow.PROJECT_ONLY_NAME)  # indexed in German, shown in the page's language
        return names.get(value, value) if name == "association" else value

    return render_template("search/page.html", result=result, photos=photos, raw=request.args.get("q", ""),
                           active=active, sort=request.args.get("sort", "relevance"), facet_labels=FACET_LABELS,
                           toggle=toggle, page_url=page_url, facet_value=facet_value, unavailable=None,
                           statuses=[s.value for s in PhotoStatus])


def _url(args: dict[str, list[str]], **extra: Any) -> str:
    params: list[tuple[str, Any]] = [("q", request.args.get("q", ""))] if request.args.get("q") else []
    if request.args.get("sort"):
        params.append(("sort", request.args["sort"]))
    params += [(name, value) for name, values in args.items() for value in values]
    params += list(extra.items())
    return url_for("search.page") + ("?" + urlencode(params) if params else "")


@bp.get("/api/v1/search")
def api() -> Any:
    try:
        result, _active = _run()
    except SearchUnavailable as error:
        raise search_unavailable() from error  # answered as JSON with Retry-After by errors_web
    return jsonify({
        "total": result.total,
        "page": result.page,
        "pages": result.pages,
        "suggestion": result.suggestion,
        "hits": [{"id": h.id, "title": h.title, "caption": h.caption, "snippet": h.snippet,
                  "thumbnail": url_for("media.derivative", photo_id=h.id, size="thumb", ext="jpg", _external=True),
                  "url": url_for("photos.detail", photo_id=h.id, _external=True)} for h in result.hits],
        "facets": result.facets,
    })
