"""The public face: what visitors see without logging in. The home page, the browse pages (by association, partner
city, place, tag and year, with counts), the Atom feed of newly published photos.

Only published photos, ever: every list comes from archive.browse, which filters by the photo's status when the query
runs. Unknown associations, cities, places, tags and years (and places, tags and years without a published photo) are
a 404 with the reason in words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel import dates
from flask import Blueprint, Response, render_template, url_for
from flask_babel import format_decimal, format_number, get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from .. import browse
from ..errors import Refusal
from ..exhibitions import published_exhibitions
from ..i18n import current_language
from ..models import Licence, Photo, Place, Tag, db, utcnow
from ..services import get_gallery_cache
from ..workflow import LICENCES
from . import page_number

bp = Blueprint("gallery", __name__)


# --------------------------------------------------------------------------------------------------------------------
# Helpers every template may use (tiles are macros: they see globals, not a view's context)


@bp.app_template_global("photo_text")
def photo_text(photo: Photo) -> dict[str, str]:
    """Title, caption and alt text in the visitor's language when the photo has them, else the German ones; with
    the language each is in (for ``lang=``)."""
    language = current_language()
    text = {"title": photo.title, "caption": photo.caption, "alt": photo.alt_text,
            "title_lang": "de", "caption_lang": "de", "alt_lang": "de"}
    if language != "de":
        other = next((t for t in photo.translations if t.lang == language), None)
        if other is not None:
            for field, value in (("title", other.title), ("caption", other.caption), ("alt", other.alt_text)):
                if value.strip():
                    text[field], text[f"{field}_lang"] = value, language
    return text


@bp.app_template_global("photo_alt")
def photo_alt(photo: Photo) -> str:
    """Every image has alt text: the photo's own (in the visitor's language when there is one), else its title,
    else "Foto Nr. 12"."""
    text = photo_text(photo)
    return text["alt"].strip() or text["title"].strip() or _("Foto Nr. %(num)d", num=photo.id)


@bp.app_template_global("credit_line")
def credit_line(photo: Photo) -> str:
    """The line beside the photo, in the visitor's language: "Foto: Anna Beispiel · CC BY 4.0" ("" without a
    credit)."""
    if not photo.credit:
        return ""
    parts = [_("Foto: %(credit)s", credit=photo.credit)]
    if photo.licence == Licence.PROJECT_ONLY:
        parts.append(_("Nutzung nur für Fotoprojekt Brücken"))
    elif photo.licence:
        parts.append(LICENCES[photo.licence][0])
    return " · ".join(parts)


def _number(value: float) -> str:
    return format_decimal(value, "#,##0.#")


@bp.app_template_global("camera_summary")
def camera_summary(photo: Photo) -> dict[str, str]:
    """The camera as the photo page shows it, from the photo's metadata columns, numbers in the visitor's language:
    {"camera": "Canon EOS 30D", "lens": "EF 24-105mm", "settings": "1/250 s · f/8 · 24 mm · ISO 100"}; only what
    is known."""
    settings = []
    if photo.exposure_time:
        settings.append(f"{photo.exposure_time} s")
    if photo.f_number:
        settings.append(f"f/{_number(photo.f_number)}")
    if photo.focal_length_mm:
        settings.append(f"{_number(photo.focal_length_mm)} mm")
    if photo.iso:
        settings.append(f"ISO {format_number(photo.iso)}")
    summary = {"camera": photo.camera or "", "lens": photo.lens or "", "settings": " · ".join(settings)}
    return {key: value for key, value in summary.items() if value}


@bp.app_template_global("taken_label")
def taken_label(photo: Photo) -> str:
    """When the photo was taken, as the camera's clock said (local time where it was taken: not converted)."""
    moment = photo.taken_at
    if moment is None:
        return ""
    locale = get_locale()
    day = dates.format_date(moment.date(), "medium", locale=locale)
    if moment.time() == datetime.min.time():
        return day
    return f"{day}, {dates.format_time(moment.time(), 'short', locale=locale)}"


def _not_found(code: str, de: str, en: str) -> Refusal:
    return Refusal(code, de, en, status=404)


# --------------------------------------------------------------------------------------------------------------------
# Pages


FACETS = {"associations": browse.association_facets, "cities": browse.city_facets, "places": browse.place_facets,
          "tags": browse.tag_facets, "years": browse.year_facets}


def _facets(*names: str) -> dict[str, list[browse.Facet]]:
    """The facet counts, from the gallery's cache: they change only when the archive does."""
    cache = get_gallery_cache()
    return {name: cache.get(db.session, name, FACETS[name]) for name in names}


@bp.get("/")
def index() -> Any:
    session = db.session
    return render_template("gallery/index.html", photos=browse.newest_published(session),
                           exhibitions=published_exhibitions(session), **_facets("associations", "cities"))


@bp.get("/entdecken")
def overview() -> Any:
    return render_template("gallery/overview.html", **_facets("associations", "cities", "places", "tags", "years"))


def _browse_page(kind: str, heading: str, page: Any, endpoint_values: dict[str, Any], **extra: Any) -> Any:
    return render_template("gallery/browse.html", kind=kind, heading=heading, page=page,
                           endpoint=f"gallery.{kind}", endpoint_values=endpoint_values, **extra)


@bp.get("/entdecken/verein/<association_slug>")
def association(association_slug: str) -> Any:
    found = browse.association_by_slug(db.session, association_slug)
    if found is None:
        raise _not_found("unknown_association", "Diesen Verein gibt es nicht.", "There is no such association.")
    page = browse.page_where(db.session, Photo.association_id == found.id, page_number())
    return _browse_page("association", found.name, page, {"association_slug": found.slug}, association=found)


@bp.get("/entdecken/stadt/<city>")
def city(city: str) -> Any:
    if not browse.city_exists(db.session, city):
        raise _not_found("unknown_city", "Diese Partnerstadt gibt es nicht.", "There is no such partner city.")
    page = browse.page_where(db.session, browse.in_city(city), page_number())
    return _browse_page("city", city, page, {"city": city})


@bp.get("/entdecken/ort/<int:place_id>")
def place(place_id: int) -> Any:
    found = db.session.get(Place, place_id)
    page = browse.page_where(db.session, Photo.place_id == place_id, page_number()) if found else None
    if found is None or page is None or page.total == 0:
        raise _not_found("unknown_place", "Zu diesem Ort gibt es keine veröffentlichten Fotos.",
                         "There are no published photos of this place.")
    return _browse_page("place", found.label, page, {"place_id": found.id}, place=found)


@bp.get("/entdecken/schlagwort/<path:tag_name>")
def tag(tag_name: str) -> Any:
    found = db.session.scalar(select(Tag).where(Tag.name == tag_name)) if len(tag_name) <= 100 else None
    page = browse.page_where(db.session, Tag.id == found.id, page_number(), join_tags=True) if found else None
    if found is None or page is None or page.total == 0:
        raise _not_found("unknown_tag", "Zu diesem Schlagwort gibt es keine veröffentlichten Fotos.",
                         "There are no published photos with this tag.")
    return _browse_page("tag", found.name, page, {"tag_name": found.name})


@bp.get("/entdecken/jahr/<int:year>")
def year(year: int) -> Any:
    page = (browse.page_where(db.session, browse.in_year(year), page_number())
            if browse.year_range(year) else None)
    if page is None or page.total == 0:
        raise _not_found("unknown_year", "Aus diesem Jahr gibt es keine veröffentlichten Fotos.",
                         "There are no published photos from this year.")
    return _browse_page("year", str(year), page, {"year": year})


# --------------------------------------------------------------------------------------------------------------------
# The Atom feed


def _rfc3339(moment: datetime) -> str:
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@bp.get("/feed.atom")
def feed() -> Any:
    """Newly published photos as Atom 1.0: title, caption, thumbnail, credit and licence; never GPS or who uploaded
    the photo."""
    photos = browse.feed_photos(db.session)

    def published(photo: Photo) -> datetime:
        return photo.status_changed_at or photo.processed_at or photo.created_at

    entries = [{"photo": photo, "published": _rfc3339(published(photo)),
                "url": url_for("photos.detail", photo_id=photo.id, _external=True),
                "thumb": (url_for("media.derivative", photo_id=photo.id, size="thumb", ext="jpg", _external=True)
                          if photo.derivative("thumb", "jpeg") else None),
                "attribution": credit_line(photo)} for photo in photos]
    updated = max((published(p) for p in photos), default=utcnow())
    body = render_template("gallery/feed.xml", entries=entries, updated=_rfc3339(updated),
                           title=_("Brücken – neu veröffentlichte Fotos"),
                           subtitle=_("Fotoprojekt der Partnerschaftsvereine Ludwigshafen"),
                           author=_("Fotoprojekt Brücken"),
                           feed_url=url_for("gallery.feed", _external=True),
                           home_url=url_for("gallery.index", _external=True))
    response = Response(body, mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, no-cache"  # a withdrawn photo leaves the feed at once
    return response
