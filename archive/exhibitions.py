"""Exhibitions: a title, dates, a venue, an introduction (Markdown, sanitised when shown) and an ordered list of
photos, each with an optional caption of its own; published exhibitions have a public page.

Visitors only ever see photos that are published *now*: the public lists filter by ``Photo.status`` when they are
read, so a photo that is withdrawn (by a curator, or because a consent was withdrawn) leaves every public
exhibition page in the same request, with nothing to update here. The curators' editor keeps such items and says
why they are not shown.

Every change is written to the audit log (``exhibition.created``, ``exhibition.changed``, ``exhibition.published``,
``exhibition.unpublished``) in the caller's transaction; the functions commit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import markdown as markdown_lib
import nh3
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, selectinload

from . import audit
from .errors import Refusal
from .models import (
    Exhibition,
    ExhibitionItem,
    ExhibitionStatus,
    JuryPhoto,
    JuryRound,
    Photo,
    PhotoStatus,
    Shortlist,
    User,
    utcnow,
)
from .views import status_label

S = PhotoStatus

TITLE_MAX = 300
VENUE_MAX = 300
INTRO_MAX = 20_000
CAPTION_MAX = 2_000
SLUG_MAX = 80  # the column's length
MAX_ITEMS = 1_000  # far more than any wall or catalogue holds: a guard against runaway requests
# Photos that cannot be shown at all: no image (yet), or a curator said no.
NOT_ADDABLE = {
    S.PROCESSING: ("wird noch verarbeitet", "is still being processed"),
    S.FAILED: ("aus der Datei ließ sich kein Bild machen", "no image could be made from the file"),
    S.REJECTED: ("wurde abgelehnt", "was rejected"),
}


# --------------------------------------------------------------------------------------------------------------------
# Slugs: the exhibition's address, /ausstellungen/<slug>

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS"})


def slugify(text: str, max_length: int = SLUG_MAX - 8) -> str:
    """ "Brücken über den Rhein – Straßenfest" -> "bruecken-ueber-den-rhein-strassenfest". German umlauts are
    spelled out, other accents dropped (é -> e), everything else becomes a hyphen. Leaves room for "-2"."""
    plain = unicodedata.normalize("NFKD", text.translate(_UMLAUTS))
    plain = plain.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    if len(slug) > max_length:
        cut = slug[:max_length]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[max_length // 2:] else cut
        slug = slug.strip("-")
    return slug or "ausstellung"


def unique_slug(session: Session, title: str, exclude_id: int | None = None) -> str:
    base = slugify(title)
    query = select(Exhibition.slug).where(Exhibition.slug.startswith(base))
    if exclude_id is not None:
        query = query.where(Exhibition.id != exclude_id)
    taken = set(session.scalars(query))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


# --------------------------------------------------------------------------------------------------------------------
# The introduction: Markdown, then only a few harmless tags

ALLOWED_TAGS = {"p", "em", "strong", "a", "ul", "ol", "li", "h2", "h3", "blockquote", "br"}
LINK_SCHEMES = ("http://", "https://", "mailto:")
LINK_REL = "nofollow noopener"


def _only_safe_links(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return value if value.strip().lower().startswith(LINK_SCHEMES) else None
    return value


def render_intro(text: str) -> Markup:
    """The introduction as HTML that is safe to put into a page: Markdown rendered, then sanitised with nh3
    (paragraphs, emphasis, lists, h2/h3, quotes, line breaks and http(s)/mailto links; nothing else survives,
    so no script, no event attributes, no javascript: links, no images)."""
    if not text.strip():
        return Markup("")
    html = markdown_lib.markdown(text, extensions=["sane_lists"], output_format="html")
    # The page's own heading is the h1: "# Über die Ausstellung" becomes an h2, deeper levels an h3.
    html = re.sub(r"<(/?)h1(?=[\s>])", r"<\1h2", html)
    html = re.sub(r"<(/?)h[4-6](?=[\s>])", r"<\1h3", html)
    clean = nh3.clean(html, tags=ALLOWED_TAGS, clean_content_tags={"script", "style"},
                      attributes={"a": {"href"}}, attribute_filter=_only_safe_links,
                      url_schemes={"http", "https", "mailto"}, link_rel=LINK_REL)
    return Markup(clean)  # sanitised just above


# --------------------------------------------------------------------------------------------------------------------
# Dates as people read them

MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember")


def german_date(day: date, with_year: bool = True) -> str:
    text = f"{day.day}. {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if with_year else text


def date_range(starts: date | None, ends: date | None) -> str:
    """ "12. Mai – 30. Juni 2026", "12. Mai 2026", "ab 12. Mai 2026", "bis 30. Juni 2026" or ""."""
    if starts and ends:
        if starts == ends:
            return german_date(starts)
        return f"{german_date(starts, with_year=starts.year != ends.year)} – {german_date(ends)}"
    if starts:
        return f"ab {german_date(starts)}"
    if ends:
        return f"bis {german_date(ends)}"
    return ""


# --------------------------------------------------------------------------------------------------------------------
# Creating and editing


@dataclass
class ExhibitionFields:
    """What the exhibition form sends, as typed (dates as ISO text from <input type="date">)."""

    title: str = ""
    venue: str = ""
    starts_on: str = ""
    ends_on: str = ""
    intro: str = ""


def _date(value: str | date | None, label_de: str, label_en: str) -> date | None:
    if isinstance(value, date):
        return value
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Refusal("exhibition_date", f"{label_de} ist kein gültiges Datum. Bitte im Format JJJJ-MM-TT "
                      f"angeben, z. B. 2026-05-12.",
                      f"{label_en} is not a valid date. Please use the format YYYY-MM-DD, e.g. 2026-05-12.",
                      status=422) from None


def _validated(fields: ExhibitionFields) -> dict[str, Any]:
    title = " ".join(fields.title.split())
    if not title:
        raise Refusal("exhibition_title", "Bitte geben Sie der Ausstellung einen Titel.",
                      "Please give the exhibition a title.", status=422)
    if len(title) > TITLE_MAX:
        raise Refusal("exhibition_title_long", f"Der Titel ist zu lang (höchstens {TITLE_MAX} Zeichen).",
                      f"The title is too long (at most {TITLE_MAX} characters).", status=422)
    venue = " ".join(fields.venue.split())
    if len(venue) > VENUE_MAX:
        raise Refusal("exhibition_venue_long", f"Der Ort ist zu lang (höchstens {VENUE_MAX} Zeichen).",
                      f"The venue is too long (at most {VENUE_MAX} characters).", status=422)
    intro = fields.intro.replace("\r\n", "\n").strip()
    if len(intro) > INTRO_MAX:
        raise Refusal("exhibition_intro_long", f"Die Einführung ist zu lang (höchstens {INTRO_MAX} Zeichen).",
                      f"The introduction is too long (at most {INTRO_MAX} characters).", status=422)
    starts_on = _date(fields.starts_on, "Der Beginn", "The start date")
    ends_on = _date(fields.ends_on, "Das Ende", "The end date")
    if starts_on and ends_on and ends_on < starts_on:
        raise Refusal("exhibition_dates", "Das Ende liegt vor dem Beginn. Bitte prüfen Sie die beiden Daten.",
                      "The end date is before the start date. Please check both dates.", status=422)
    return {"title": title, "venue": venue, "starts_on": starts_on, "ends_on": ends_on, "intro": intro}


def _snapshot(exhibition: Exhibition) -> dict[str, Any]:
    return {name: getattr(exhibition, name) for name in ("title", "slug", "venue", "starts_on", "ends_on", "intro")}


def create_exhibition(session: Session, actor: User, fields: ExhibitionFields) -> Exhibition:
    values = _validated(fields)
    exhibition = Exhibition(**values, slug=unique_slug(session, values["title"]), created_by_id=actor.id,
                            status=ExhibitionStatus.DRAFT)
    session.add(exhibition)
    session.flush()
    audit.record(session, "exhibition.created", actor=actor, subject="exhibition", subject_id=exhibition.id,
                 after=_snapshot(exhibition))
    session.commit()
    return exhibition


def update_exhibition(session: Session, exhibition: Exhibition, actor: User, fields: ExhibitionFields) -> Exhibition:
    """Saves the fields. The address follows the title until the exhibition is first published; from then on it
    stays, so links that were shared keep working."""
    values = _validated(fields)
    before = _snapshot(exhibition)
    for name, value in values.items():
        setattr(exhibition, name, value)
    if exhibition.published_at is None and values["title"] != before["title"]:
        exhibition.slug = unique_slug(session, values["title"], exclude_id=exhibition.id)
    old, new = audit.changes(before, _snapshot(exhibition))
    if new:
        audit.record(session, "exhibition.changed", actor=actor, subject="exhibition", subject_id=exhibition.id,
                     before=old, after=new)
    session.commit()
    return exhibition


# --------------------------------------------------------------------------------------------------------------------
# The photos of an exhibition


@dataclass
class Added:
    """What adding photos did: who came in, who was there already, who could not (and why)."""

    added: list[Photo] = field(default_factory=list)
    already: list[Photo] = field(default_factory=list)
    refused: list[tuple[Photo, str, str]] = field(default_factory=list)  # photo, reason de, reason en
    missing: list[int] = field(default_factory=list)  # numbers no photo has


def add_photos(session: Session, exhibition: Exhibition, photos: Iterable[Photo], actor: User,
               source: str = "") -> Added:
    """Appends ``photos`` in the given order, each once. Photos without an image and rejected ones stay out."""
    photos = list(photos)
    outcome = Added()
    present = {item.photo_id for item in exhibition.items}
    position = max((item.position for item in exhibition.items), default=0)
    for photo in photos:
        if photo.id in present:
            outcome.already.append(photo)
            continue
        if photo.status in NOT_ADDABLE:
            de, en = NOT_ADDABLE[photo.status]
            outcome.refused.append((photo, de, en))
            continue
        if len(present) >= MAX_ITEMS:
            outcome.refused.append((photo, f"passt nicht mehr hinein (höchstens {MAX_ITEMS} Fotos)",
                                    f"does not fit any more (at most {MAX_ITEMS} photos)"))
            continue
        position += 1
        exhibition.items.append(ExhibitionItem(photo_id=photo.id, position=position, caption=""))
        present.add(photo.id)
        outcome.added.append(photo)
    if outcome.added:
        audit.record(session, "exhibition.changed", actor=actor, subject="exhibition", subject_id=exhibition.id,
                     added=[p.id for p in outcome.added], source=source)
    try:
        session.commit()
    except IntegrityError:  # a double click: the other request added them a moment ago; now they are "already"
        session.rollback()
        return add_photos(session, exhibition, photos, actor, source)
    return outcome


def add_photo_ids(session: Session, exhibition: Exhibition, ids: Sequence[int], actor: User) -> Added:
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise Refusal("nothing_to_add", "Bitte geben Sie mindestens eine Fotonummer an (z. B. 12, 15, 40).",
                      "Please give at least one photo number (e.g. 12, 15, 40).", status=422)
    if len(unique) > MAX_ITEMS:
        raise Refusal("too_many_photos", f"Bitte höchstens {MAX_ITEMS} Fotos auf einmal.",
                      f"Please at most {MAX_ITEMS} photos at once.", status=422)
    found = {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(unique)))}
    outcome = add_photos(session, exhibition, [found[i] for i in unique if i in found], actor,
                         source="Fotonummern")
    outcome.missing = [i for i in unique if i not in found]
    return outcome


def add_from_shortlist(session: Session, exhibition: Exhibition, shortlist: Shortlist, actor: User) -> Added:
    """Every photo of the shortlist, in the order they were put on it."""
    return add_photos(session, exhibition, list(shortlist.photos), actor, source=f"Auswahlliste „{shortlist.name}“")


def add_from_round(session: Session, exhibition: Exhibition, jury_round: JuryRound, actor: User) -> Added:
    """The photos the jury round selected (when it closed), in the round's order."""
    chosen = session.scalars(select(JuryPhoto).where(JuryPhoto.round_id == jury_round.id,
                                                     JuryPhoto.selected.is_(True))
                             .options(selectinload(JuryPhoto.photo)).order_by(JuryPhoto.position, JuryPhoto.id))
    photos = [jp.photo for jp in chosen]
    if not photos:
        raise Refusal("round_nothing_selected",
                      f"Die Jury-Runde „{jury_round.name}“ hat (noch) keine Fotos ausgewählt. Sie wählt aus, wenn "
                      "sie abgeschlossen wird.",
                      f"The jury round '{jury_round.name}' has not selected any photos (yet). It selects when it "
                      "is closed.", status=409)
    return add_photos(session, exhibition, photos, actor, source=f"Jury-Runde „{jury_round.name}“")


def item_of(exhibition: Exhibition, item_id: int) -> ExhibitionItem:
    item = next((i for i in exhibition.items if i.id == item_id), None)
    if item is None:
        raise Refusal("item_missing", "Dieses Foto ist nicht (mehr) in der Ausstellung. Bitte laden Sie die Seite "
                      "neu.", "This photo is not (or no longer) in the exhibition. Please reload the page.",
                      status=404)
    return item


def _renumber(exhibition: Exhibition, ordered: list[ExhibitionItem]) -> None:
    for position, item in enumerate(ordered, start=1):
        item.position = position
    exhibition.items.sort(key=lambda i: i.position)


def remove_item(session: Session, exhibition: Exhibition, item_id: int, actor: User) -> Photo:
    item = item_of(exhibition, item_id)
    photo = item.photo
    exhibition.items.remove(item)
    _renumber(exhibition, list(exhibition.items))
    audit.record(session, "exhibition.changed", actor=actor, subject="exhibition", subject_id=exhibition.id,
                 photo_id=photo.id, removed=photo.id)
    session.commit()
    return photo


def set_caption(session: Session, exhibition: Exhibition, item_id: int, caption: str, actor: User) -> ExhibitionItem:
    """The exhibition's own caption for a photo; empty: the photo's caption is shown."""
    item = item_of(exhibition, item_id)
    caption = caption.replace("\r\n", "\n").strip()
    if len(caption) > CAPTION_MAX:
        raise Refusal("caption_long", f"Die Bildunterschrift ist zu lang (höchstens {CAPTION_MAX} Zeichen).",
                      f"The caption is too long (at most {CAPTION_MAX} characters).", status=422)
    if caption != item.caption:
        audit.record(session, "exhibition.changed", actor=actor, subject="exhibition", subject_id=exhibition.id,
                     photo_id=item.photo_id, before={"caption": item.caption}, after={"caption": caption})
        item.caption = caption
    session.commit()
    return item


def move_item(session: Session, exhibition: Exhibition, item_id: int, step: int, actor: User) -> int:
    """Moves an item one place up (-1) or down (+1); at either end nothing happens. Returns its new position."""
    if step not in (-1, 1):
        raise Refusal("move_direction", "Bitte nach oben oder nach unten verschieben.", "Please move up or down.",
                      status=400)
    ordered = list(exhibition.items)
    item = item_of(exhibition, item_id)
    index = ordered.index(item)
    target = index + step
    if 0 <= target < len(ordered):
        ordered[index], ordered[target] = ordered[target], ordered[index]
        _record_order(session, exhibition, ordered, actor)
    session.commit()
    return item.position


def set_order(session: Session, exhibition: Exhibition, item_ids: Sequence[int], actor: User) -> list[int]:
    """The whole order at once (drag and drop sends it): ``item_ids`` must name every item exactly once."""
    current = {item.id: item for item in exhibition.items}
    if len(item_ids) != len(current) or set(item_ids) != current.keys():
        raise Refusal("order_outdated",
                      "Die Liste hat sich inzwischen geändert (jemand hat Fotos hinzugefügt oder entfernt). Bitte "
                      "laden Sie die Seite neu und verschieben Sie noch einmal.",
                      "The list has changed meanwhile (someone added or removed photos). Please reload the page and "
                      "move again.", status=409)
    ordered = [current[i] for i in item_ids]
    if ordered != list(exhibition.items):
        _record_order(session, exhibition, ordered, actor)
    session.commit()
    return [item.id for item in exhibition.items]


def _record_order(session: Session, exhibition: Exhibition, ordered: list[ExhibitionItem], actor: User) -> None:
    before = [item.photo_id for item in exhibition.items]
    _renumber(exhibition, ordered)
    audit.record(session, "exhibition.changed", actor=actor, subject="exhibition", subject_id=exhibition.id,
                 before={"order": before}, after={"order": [item.photo_id for item in ordered]})


# --------------------------------------------------------------------------------------------------------------------
# Publishing


def publish(session: Session, exhibition: Exhibition, actor: User) -> Exhibition:
    if exhibition.status == ExhibitionStatus.PUBLISHED:
        return exhibition
    if not public_items(session, exhibition):
        raise Refusal("exhibition_empty",
                      "Die Ausstellung enthält noch kein veröffentlichtes Foto. Fügen Sie zuerst Fotos hinzu, die "
                      "öffentlich sind.",
                      "The exhibition has no published photo yet. Please add photos that are public first.",
                      status=409)
    exhibition.status = ExhibitionStatus.PUBLISHED
    exhibition.published_at = utcnow()
    audit.record(session, "exhibition.published", actor=actor, subject="exhibition", subject_id=exhibition.id,
                 before={"status": ExhibitionStatus.DRAFT}, after={"status": ExhibitionStatus.PUBLISHED})
    session.commit()
    return exhibition


def unpublish(session: Session, exhibition: Exhibition, actor: User) -> Exhibition:
    """Back to a draft: the public page is gone at once. The address stays reserved for when it returns."""
    if exhibition.status == ExhibitionStatus.DRAFT:
        return exhibition
    exhibition.status = ExhibitionStatus.DRAFT
    audit.record(session, "exhibition.unpublished", actor=actor, subject="exhibition", subject_id=exhibition.id,
                 before={"status": ExhibitionStatus.PUBLISHED}, after={"status": ExhibitionStatus.DRAFT})
    session.commit()
    return exhibition


# --------------------------------------------------------------------------------------------------------------------
# Reading: the public lists filter by the photo's status when they are read


def _public_item_query(exhibition_ids: Sequence[int]) -> Any:
    return (select(ExhibitionItem).join(ExhibitionItem.photo)
            .where(ExhibitionItem.exhibition_id.in_(exhibition_ids), Photo.status == S.PUBLISHED)
            .order_by(ExhibitionItem.exhibition_id, ExhibitionItem.position, ExhibitionItem.id))


def public_items(session: Session, exhibition: Exhibition) -> list[ExhibitionItem]:
    """The items a visitor sees, in order: only photos that are published at this moment."""
    query = _public_item_query([exhibition.id]).options(
        contains_eager(ExhibitionItem.photo).selectinload(Photo.derivatives),
        contains_eager(ExhibitionItem.photo).selectinload(Photo.association))
    return list(session.scalars(query).unique())


@dataclass(frozen=True)
class Listed:
    """One exhibition on the public list: its cover (first public photo) and how many photos it shows."""

    exhibition: Exhibition
    cover: Photo | None
    count: int


def published_exhibitions(session: Session) -> list[Listed]:
    """Published exhibitions, newest first (by start date, else by when they were published)."""
    exhibitions = list(session.scalars(select(Exhibition).where(Exhibition.status == ExhibitionStatus.PUBLISHED)))
    if not exhibitions:
        return []
    counts = _counts(session, select(ExhibitionItem.exhibition_id, func.count()).join(ExhibitionItem.photo)
                     .where(ExhibitionItem.exhibition_id.in_([e.id for e in exhibitions]), Photo.status == S.PUBLISHED)
                     .group_by(ExhibitionItem.exhibition_id))
    covers: dict[int, Photo] = {}
    for exhibition in exhibitions:
        first = session.scalar(_public_item_query([exhibition.id]).options(
            contains_eager(ExhibitionItem.photo).selectinload(Photo.derivatives)).limit(1))
        if first is not None:
            covers[exhibition.id] = first.photo

    def newest(e: Exhibition) -> tuple[date, int]:
        when = e.starts_on or (e.published_at.date() if e.published_at else e.created_at.date())
        return when, e.id

    return [Listed(e, covers.get(e.id), counts.get(e.id, 0)) for e in sorted(exhibitions, key=newest, reverse=True)]


def exhibition_by_slug(session: Session, slug: str) -> Exhibition | None:
    return session.scalar(select(Exhibition).where(Exhibition.slug == slug))


@dataclass(frozen=True)
class EditorItem:
    """An item as the curators' editor shows it: with whether visitors see it, and if not, why."""

    item: ExhibitionItem
    public: bool
    reason: str  # "" when public


def hidden_reason(photo: Photo) -> str:
    if photo.status == S.PUBLISHED:
        return ""
    text = status_label(photo.status)
    return f"{text} – {photo.status_reason}" if photo.status_reason else text


def editor_items(session: Session, exhibition: Exhibition) -> list[EditorItem]:
    items = session.scalars(select(ExhibitionItem).where(ExhibitionItem.exhibition_id == exhibition.id)
                            .options(selectinload(ExhibitionItem.photo).selectinload(Photo.derivatives),
                                     selectinload(ExhibitionItem.photo).selectinload(Photo.association))
                            .order_by(ExhibitionItem.position, ExhibitionItem.id))
    return [EditorItem(item, item.photo.status == S.PUBLISHED, hidden_reason(item.photo)) for item in items]


def all_exhibitions(session: Session) -> list[tuple[Exhibition, int, int]]:
    """For the curators' list: every exhibition, newest first, with (items, of which public)."""
    exhibitions = list(session.scalars(select(Exhibition).order_by(Exhibition.created_at.desc(),
                                                                   Exhibition.id.desc())))
    totals = _counts(session, select(ExhibitionItem.exhibition_id, func.count())
                     .group_by(ExhibitionItem.exhibition_id))
    public = _counts(session, select(ExhibitionItem.exhibition_id, func.count()).join(ExhibitionItem.photo)
                     .where(Photo.status == S.PUBLISHED).group_by(ExhibitionItem.exhibition_id))
    return [(e, totals.get(e.id, 0), public.get(e.id, 0)) for e in exhibitions]


def rounds_with_selection(session: Session) -> list[tuple[JuryRound, int]]:
    """Jury rounds that have selected photos, with how many."""
    rows = session.execute(select(JuryRound, func.count(JuryPhoto.id)).join(JuryPhoto)
                           .where(JuryPhoto.selected.is_(True)).group_by(JuryRound.id)
                           .order_by(JuryRound.created_at.desc(), JuryRound.id.desc()))
    return [(row[0], int(row[1])) for row in rows]


def _counts(session: Session, query: Any) -> dict[int, int]:
    return {int(row[0]): int(row[1]) for row in session.execute(query)}
