"""Exports of an exhibition, made by a background job into the object store: the print shop's ZIP (originals and
credits), the PDF catalogue (a cover, one photo per page with its credits and a QR code) and the jury's contact
sheet (a numbered grid).

Memory stays flat however big the exhibition is:

- The ZIP is written entry by entry into a temporary file in the staging folder; each original is copied from
  the object store in chunks (``ZIP_STORED``: JPEGs do not compress), never held whole.
- The PDFs are made with reportlab, which keeps the whole document until it is saved and then joins it into one
  string. Here (``_StreamingCanvas``) images are file references that are read one at a time while the file is
  written, each page's drawing is compressed as soon as the page is finished, and the document is written
  object by object straight into the file. What stays in memory is a few kB per page.

The finished file is stored under ``exports/<export id>/<filename>``; the temporary files are removed whatever
happens. An export that fails says why, in German and English, and can simply be started again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import markdown as markdown_lib
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.pdfutils import readJPEGInfo
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from . import audit
from .errors import Refusal
from .models import (
    Consent,
    ConsentScope,
    Exhibition,
    ExhibitionItem,
    Export,
    ExportStatus,
    Licence,
    PeopleShown,
    Photo,
    PhotoStatus,
    User,
    utcnow,
)
from .spreadsheets import spreadsheet_safe
from .storage import ObjectNotFound, ObjectStore, StorageError, StorageUnavailable, delete_best_effort
from .workflow import LICENCES, attribution, publication_gaps, status_de

log = logging.getLogger(__name__)

KINDS: dict[str, tuple[str, str]] = {
    "zip": ("Druckpaket (ZIP)", "print package (ZIP)"),
    "catalogue": ("Katalog (PDF)", "catalogue (PDF)"),
    "contact_sheet": ("Kontaktbogen (PDF)", "contact sheet (PDF)"),
}
LANGUAGES: dict[str, str] = {"de": "Deutsch", "en": "English"}
STATUS_LABELS: dict[ExportStatus, tuple[str, str]] = {
    ExportStatus.QUEUED: ("wartet", "queued"),
    ExportStatus.RUNNING: ("wird erstellt", "running"),
    ExportStatus.DONE: ("fertig", "done"),
    ExportStatus.FAILED: ("fehlgeschlagen", "failed"),
}
CONTENT_TYPES = {"zip": "application/zip", "catalogue": "application/pdf", "contact_sheet": "application/pdf"}
EXTENSIONS = {"jpeg": "jpg", "heif": "heic"}  # a photo's format -> its file extension (others: the format itself)
CHUNK_SIZE = 1024 * 1024

try:
    LOCAL_ZONE: Any = ZoneInfo("Europe/Berlin")
except ZoneInfoNotFoundError:  # no time zone data on this system
    LOCAL_ZONE = UTC


# --------------------------------------------------------------------------------------------------------------------
# Asking for an export


def request_export(session: Session, exhibition: Exhibition, kind: str, language: str, actor: User) -> Export:
    """A new export, queued; the caller enqueues the job (``Jobs.enqueue_export``)."""
    if kind not in KINDS:
        raise Refusal("unknown_export", "Diese Art von Export gibt es nicht. Bitte wählen Sie ZIP, Katalog oder "
                      "Kontaktbogen.", "There is no such export. Please choose ZIP, catalogue or contact sheet.",
                      status=422)
    if language not in LANGUAGES:
        raise Refusal("unknown_language", "Exporte gibt es auf Deutsch oder Englisch.",
                      "Exports are made in German or English.", status=422)
    count = len(exhibition.items)
    if not count:
        raise Refusal("exhibition_empty", "Die Ausstellung enthält noch keine Fotos. Fügen Sie zuerst Fotos hinzu.",
                      "The exhibition has no photos yet. Please add photos first.", status=409)
    export = Export(exhibition_id=exhibition.id, kind=kind, language=language, status=ExportStatus.QUEUED,
                    done=0, total=count, created_by_id=actor.id)
    session.add(export)
    session.flush()
    audit.record(session, "export.requested", actor=actor, subject="export", subject_id=export.id,
                 exhibition_id=exhibition.id, kind=kind, language=language, photos=count)
    session.commit()
    return export


def exports_of(session: Session, exhibition: Exhibition, limit: int = 20) -> list[Export]:
    """The exhibition's latest exports, newest first."""
    return list(session.scalars(select(Export).where(Export.exhibition_id == exhibition.id)
                                .order_by(Export.id.desc()).limit(limit)))


STALLED_AFTER = timedelta(hours=6)  # far longer than any export takes: the worker was stopped while it ran


def stalled(export: Export, now: datetime | None = None) -> bool:
    """Queued or running for hours: its job was lost (a worker stopped mid-way); people should start it again."""
    waiting = export.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)
    return waiting and (now or utcnow()) - export.created_at > STALLED_AFTER


def kind_label(kind: str, language: str = "de") -> str:
    de, en = KINDS.get(kind, (kind, kind))
    return en if language == "en" else de


def status_label(status: ExportStatus | str, language: str = "de") -> str:
    de, en = STATUS_LABELS.get(ExportStatus(status), (str(status), str(status)))
    return en if language == "en" else de


def failure_messages(export: Export) -> tuple[str, str]:
    """Why an export failed, in German and in English (stored as two lines)."""
    de, _, en = (export.error or "").partition("\n")
    return de, en or de


def download_name(export: Export) -> str:
    """The file name people download: ``<exhibition>-katalog-de.pdf`` and so on."""
    base = file_safe(export.exhibition.slug or export.exhibition.title, 60) or "ausstellung"
    words = {"zip": ("druckpaket", "print-package"), "catalogue": ("katalog", "catalogue"),
             "contact_sheet": ("kontaktbogen", "contact-sheet")}[export.kind]
    word = words[1] if export.language == "en" else words[0]
    ext = "zip" if export.kind == "zip" else "pdf"
    return f"{base}-{word}-{export.language}.{ext}"


# --------------------------------------------------------------------------------------------------------------------
# Running it (the job)


class _Failure(Refusal):
    """An export cannot be finished; the message says why and what to do."""


def run_export(session: Session, store: ObjectStore, settings: Any, export_id: int,
               base_url: str = "") -> Export | None:
    """Makes the export's file and stores it. ``base_url``: the archive's address for the QR codes when
    ``BASE_URL`` is not set (the address the export was asked from). Never raises for a failed export: the
    export is marked failed, with the reason."""
    export = session.get(Export, export_id)
    if export is None or export.status == ExportStatus.DONE:
        return export  # gone with its exhibition, or made already by an earlier run of the same job
    export.status = ExportStatus.RUNNING
    export.done = 0
    export.error = None
    session.commit()
    staging = Path(settings["STAGING_DIR"])
    base = (str(settings.get("BASE_URL") or "") or base_url or "").rstrip("/")
    kind = export.kind
    temporary: list[Path] = []
    stored: list[str] = []
    try:
        staging.mkdir(parents=True, exist_ok=True)
        exhibition = export.exhibition
        # The print shop's prints hang at the exhibition: their consent must cover print and the exhibition.
        scopes = (ConsentScope.PRINT, ConsentScope.EXHIBITION) if kind == "zip" else (ConsentScope.PRINT,)
        entries = plan(session, exhibition, export.language, scopes)
        export.total = len(entries)
        session.commit()
        progress = _progress(session, export)
        target = _temporary(staging, export.id, ".zip" if kind == "zip" else ".pdf", temporary)
        with open(target, "wb") as out:
            if kind == "zip":
                write_zip(out, store, exhibition, entries, export.language, progress)
            else:
                context = _PdfContext(store=store, staging=staging, export_id=export.id, temporary=temporary,
                                      base_url=base, language=export.language)
                if kind == "catalogue":
                    write_catalogue(out, context, exhibition, entries, progress)
                else:
                    write_contact_sheet(out, context, exhibition, entries, progress)
        key = f"exports/{export.id}/{download_name(export)}"
        store.put_file(key, target, CONTENT_TYPES[kind])
        stored.append(key)
        export.key = key
        export.size_bytes = target.stat().st_size
        export.status = ExportStatus.DONE
        export.done = export.total
        export.finished_at = utcnow()
        session.commit()
        log.info("export %s (%s) done: %s bytes", export.id, kind, export.size_bytes)
    except Exception as error:  # every failure ends as a failed export, with its reason
        session.rollback()
        delete_best_effort(store, stored)  # stored, but the database could not say so: no row points to it
        reason = _reason(error)
        if not isinstance(error, Refusal):
            log.exception("export %s failed", export_id)
        else:
            log.warning("export %s failed: %s", export_id, reason.en)
        export = session.get(Export, export_id)
        if export is not None:
            export.status = ExportStatus.FAILED
            export.error = f"{reason.de}\n{reason.en}"
            export.finished_at = utcnow()
            session.commit()
    finally:
        for path in temporary:
            with suppress(OSError):
                path.unlink()
    return export


def _temporary(staging: Path, export_id: int, suffix: str, temporary: list[Path]) -> Path:
    """A new temporary file in the staging folder (reconcile removes any that a crash leaves behind)."""
    fd, name = tempfile.mkstemp(dir=staging, prefix=f"export-{export_id}-", suffix=suffix)
    os.close(fd)
    path = Path(name)
    temporary.append(path)
    return path


def _progress(session: Session, export: Export) -> Callable[[int], None]:
    def done(count: int) -> None:
        export.done = count
        session.commit()

    return done


def _reason(error: Exception) -> Refusal:
    if isinstance(error, Refusal):
        return error
    if isinstance(error, StorageUnavailable):
        return Refusal("storage_unavailable",
                       "Der Fotospeicher war nicht erreichbar. Bitte starten Sie den Export in ein paar Minuten neu.",
                       "The photo storage could not be reached. Please start the export again in a few minutes.")
    if isinstance(error, StorageError):
        return Refusal("storage_error", f"Der Fotospeicher meldete einen Fehler ({error}). Bitte starten Sie den "
                       "Export neu; wenn es wieder passiert, sagen Sie der Verwaltung Bescheid.",
                       f"The photo storage reported an error ({error}). Please start the export again; if it "
                       "happens again, tell the administrators.")
    if isinstance(error, OSError):
        return Refusal("disk_error", f"Die Exportdatei ließ sich nicht schreiben ({error.strerror or error}). "
                       "Vielleicht ist der Speicherplatz voll; bitte sagen Sie der Verwaltung Bescheid.",
                       f"The export file could not be written ({error.strerror or error}). The disk may be full; "
                       "please tell the administrators.")
    return Refusal("export_failed", f"Der Export ist fehlgeschlagen ({type(error).__name__}). Bitte starten Sie ihn "
                   "neu; wenn es wieder passiert, sagen Sie der Verwaltung Bescheid.",
                   f"The export failed ({type(error).__name__}). Please start it again; if it happens again, tell "
                   "the administrators.")


def _missing(entry: Entry, what_de: str, what_en: str) -> _Failure:
    return _Failure("export_image_missing",
                    f"{what_de} von Nr. {entry.number} „{entry.title}“ (Foto {entry.photo_id}) fehlt im Speicher. "
                    "Bitte prüfen Sie das Foto oder nehmen Sie es aus der Ausstellung, und starten Sie den Export neu.",
                    f"The {what_en} of no. {entry.number} '{entry.title}' (photo {entry.photo_id}) is missing from "
                    "storage. Please check the photo or take it out of the exhibition, and start the export again.")


# --------------------------------------------------------------------------------------------------------------------
# What goes in: one entry per exhibition item, read once (progress commits do not reload anything)


@dataclass
class Entry:
    number: int  # 1, 2, 3 … in exhibition order: the number printed everywhere
    photo_id: int
    status: str
    title: str
    caption: str
    photographer: str
    association: str
    licence: str
    licence_url: str | None
    attribution: str
    people: str
    consent_scopes: list[str]
    consent_scope: str  # in words, in the export's language
    original_key: str
    sha256: str
    extension: str
    preview_key: str | None
    thumb_key: str | None
    reason_de: str = ""  # why it may not be printed; empty: it may
    reason_en: str = ""
    file: str = ""  # its name in the ZIP

    @property
    def printable(self) -> bool:
        return not self.reason_de

    @property
    def published(self) -> bool:
        return self.status == PhotoStatus.PUBLISHED


PLAN_BATCH = 100  # items read at once: their ORM objects are let go before the next ones are read


def outdated(session: Session, export: Export) -> bool:
    """Whether a photo of the exhibition changed its status, or lost a consent, after the file was made: a package
    from before a withdrawal must not reach the print shop any more; it is made again instead."""
    if export.finished_at is None:
        return False
    photo_ids = select(ExhibitionItem.photo_id).where(ExhibitionItem.exhibition_id == export.exhibition_id)
    status_changed = select(Photo.id).where(Photo.id.in_(photo_ids), Photo.status_changed_at > export.finished_at)
    consent_withdrawn = select(Consent.id).where(Consent.photo_id.in_(photo_ids),
                                                 Consent.withdrawn_at > export.finished_at)
    return bool(session.scalar(select(status_changed.exists())) or session.scalar(select(consent_withdrawn.exists())))


def plan(session: Session, exhibition: Exhibition, language: str,
         scopes: tuple[ConsentScope, ...] = (ConsentScope.PRINT,)) -> list[Entry]:
    """Every item of the exhibition, in order, with what the exports print and whether it may be printed (consent
    covering every one of ``scopes``). Read in
    batches: a photo's rows (derivatives, consents, translations) weigh some kB, its Entry a little over one."""
    item_ids = list(session.scalars(select(ExhibitionItem.id).where(ExhibitionItem.exhibition_id == exhibition.id)
                                    .order_by(ExhibitionItem.position, ExhibitionItem.id)))
    entries: list[Entry] = []
    for start in range(0, len(item_ids), PLAN_BATCH):
        batch = item_ids[start:start + PLAN_BATCH]
        photo = selectinload(ExhibitionItem.photo)
        items = {item.id: item for item in session.scalars(
            select(ExhibitionItem).where(ExhibitionItem.id.in_(batch))
            .options(photo.selectinload(Photo.derivatives), photo.selectinload(Photo.consents),
                     photo.selectinload(Photo.translations), photo.selectinload(Photo.association)))}
        for item_id in batch:
            entries.append(_entry(len(entries) + 1, items[item_id], language, scopes))
        del items
    for entry in entries:
        if entry.printable:
            entry.file = zip_name(entry.number, len(entries), entry.title, entry.extension)
    return entries


def zip_name(number: int, count: int, title: str, extension: str) -> str:
    """``07-bruecke-ueber-den-rhein.jpg``: the number with as many digits as the largest needs (at least two)."""
    width = max(2, len(str(count)))
    return f"{number:0{width}d}-{file_safe(title) or 'foto'}.{extension}"


def _entry(number: int, item: ExhibitionItem, language: str, required: tuple[ConsentScope, ...]) -> Entry:
    photo = item.photo
    text = next((t for t in photo.translations if t.lang == language), None) if language != "de" else None
    title = (text.title if text and text.title else photo.display_title).strip()
    caption = (item.caption or (text.caption if text and text.caption else photo.caption)).strip()
    licence, url = LICENCES[Licence(photo.licence)] if photo.licence else ("", None)
    if language == "en" and photo.licence == Licence.PROJECT_ONLY:
        licence = "Fotoprojekt Brücken only"
    scopes = sorted({scope.value for c in photo.consents if c.active for scope in c.scopes},
                    key=[s.value for s in ConsentScope].index)
    preview, thumb = photo.derivative("preview", "jpeg"), photo.derivative("thumb", "jpeg")
    entry = Entry(
        number=number, photo_id=photo.id, status=photo.status.value, title=title, caption=caption,
        photographer=photo.credit.strip(), association=photo.association.name if photo.association else "",
        licence=licence, licence_url=url, attribution=_attribution(photo, language), people=photo.people.value,
        consent_scopes=scopes, consent_scope=_consent_words(photo.people, scopes, language),
        original_key=photo.original_key, sha256=photo.sha256,
        extension=EXTENSIONS.get(photo.format, photo.format), preview_key=preview.key if preview else None,
        thumb_key=thumb.key if thumb else None)
    if photo.status != PhotoStatus.PUBLISHED:
        entry.reason_de = f"nicht veröffentlicht (Status: {status_de(photo.status)})"
        entry.reason_en = f"not published (status: {photo.status.value.replace('_', ' ')})"
    elif gaps := list({gap.field: gap for scope in required for gap in publication_gaps(photo, scope)}.values()):
        entry.reason_de = "für den Druck fehlt: " + "; ".join(g.de for g in gaps)
        entry.reason_en = "missing for print: " + "; ".join(g.en for g in gaps)
    return entry


def _attribution(photo: Photo, language: str) -> str:
    """``workflow.attribution`` ("Foto: Anna Beispiel · CC BY 4.0"), and its English form."""
    if language != "en" or not photo.credit:
        return attribution(photo)
    parts = [f"Photo: {photo.credit}"]
    if photo.licence == Licence.PROJECT_ONLY:
        parts.append("for Fotoprojekt Brücken only")
    elif photo.licence:
        parts.append(LICENCES[Licence(photo.licence)][0])
    return " · ".join(parts)


SCOPE_WORDS = {"web": ("Website", "web"), "exhibition": ("Ausstellung", "exhibition"), "print": ("Druck", "print")}


def _consent_words(people: PeopleShown, scopes: list[str], language: str) -> str:
    en = language == "en"
    if people == PeopleShown.NONE:
        return "no identifiable people" if en else "keine erkennbaren Personen"
    if people == PeopleShown.PUBLIC_EVENT:
        return "public event (KUG §23)" if en else "öffentliche Veranstaltung (KUG §23)"
    if people == PeopleShown.CONSENT:
        words = ", ".join(SCOPE_WORDS[s][1 if en else 0] for s in scopes) or ("none" if en else "keine")
        return f"consent: {words}" if en else f"Einwilligung: {words}"
    return "not stated" if en else "nicht angegeben"


_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS",
                       "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "Oe", "ı": "i", "ə": "e",
                       "Ə": "E", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L"})


def file_safe(text: str, max_length: int = 60) -> str:
    """A title as a file name that every system and print shop takes: ASCII (ä -> ae, é -> e), lower case,
    words joined by hyphens. Letters with no ASCII form (Cyrillic) drop out."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", text).translate(_FOLD))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(words) > max_length:
        words = words[:max_length].rsplit("-", 1)[0] if "-" in words[:max_length] else words[:max_length]
    return words.strip("-")


# --------------------------------------------------------------------------------------------------------------------
# Words shared by the files


MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")


def format_date(day: date, language: str) -> str:
    if language == "en":
        return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.day}. {MONTHS_DE[day.month - 1]} {day.year}"


def date_range(exhibition: Exhibition, language: str) -> str:
    starts, ends = exhibition.starts_on, exhibition.ends_on
    if starts and ends and starts != ends:
        return f"{format_date(starts, language)} – {format_date(ends, language)}"
    if starts or ends:
        return format_date(starts or ends, language)  # type: ignore[arg-type]
    return ""


def local_now() -> datetime:
    return utcnow().replace(tzinfo=UTC).astimezone(LOCAL_ZONE)


def intro_paragraphs(text: str) -> list[str]:
    """The Markdown introduction as plain paragraphs; a list is one paragraph of lines ("• …", "1. …")."""
    reader = _PlainText()
    reader.feed(markdown_lib.markdown(text or "", extensions=["sane_lists"], output_format="html"))
    reader.close()
    return reader.paragraphs


class _PlainText(HTMLParser):
    """Text of rendered Markdown: paragraphs, headings and list items; scripts and styles left out."""

    BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "div", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._lines: list[str] = []
        self._line: list[str] = []
        self._lists: list[int | None] = []  # the open lists' item counters (None: bullets)
        self._skip = 0

    def _flush_line(self) -> None:
        line = re.sub(r"\s+", " ", "".join(self._line)).strip()
        if line and not re.fullmatch(r"•|\d+\.", line):  # not an empty list item
            indent = "  " * max(0, len(self._lists) - 1)
            self._lines.append(indent + line)
        self._line = []

    def _end_paragraph(self) -> None:
        self._flush_line()
        if self._lines:
            self.paragraphs.append("\n".join(self._lines))
        self._lines = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("ol", "ul"):
            if not self._lists:
                self._end_paragraph()
            else:
                self._flush_line()
            start = dict(attrs).get("start") or "1"
            self._lists.append(int(start) - 1 if tag == "ol" and start.isdigit() else None)
        elif tag == "li":
            self._flush_line()
            if self._lists and self._lists[-1] is not None:
                self._lists[-1] = (self._lists[-1] or 0) + 1
                self._line.append(f"{self._lists[-1]}. ")
            else:
                self._line.append("• ")
        elif tag == "br":
            self._flush_line()
        elif tag in self.BLOCKS and not self._lists:
            self._end_paragraph()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("ol", "ul"):
            self._flush_line()
            self._lists = self._lists[:-1]
            if not self._lists:
                self._end_paragraph()
        elif tag in self.BLOCKS and not self._lists:
            self._end_paragraph()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._line.append(data)

    def close(self) -> None:
        super().close()
        self._end_paragraph()


# --------------------------------------------------------------------------------------------------------------------
# The print shop's ZIP


CSV_COLUMNS = ("number", "file", "title", "caption", "photographer", "association", "licence", "attribution",
               "consent_scope", "included", "reason_de", "reason_en")


def write_zip(out: BinaryIO, store: ObjectStore, exhibition: Exhibition, entries: list[Entry], language: str,
              progress: Callable[[int], None]) -> None:
    """README.txt, credits.csv and credits.json first, then the printable originals byte for byte, in order."""
    made = local_now()
    stamp = made.timetuple()[:6]
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        for name, data in (("README.txt", readme(exhibition, entries, language, made).encode("utf-8")),
                           ("credits.csv", credits_csv(entries)),
                           ("credits.json", credits_json(exhibition, entries, language, made))):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        for count, entry in enumerate(entries, start=1):
            if entry.printable:
                info = zipfile.ZipInfo(entry.file, date_time=stamp)
                info.compress_type = zipfile.ZIP_STORED  # photos are compressed already
                _copy_original(archive, info, store, entry)
            progress(count)


def _copy_original(archive: zipfile.ZipFile, info: zipfile.ZipInfo, store: ObjectStore, entry: Entry) -> None:
    digest = hashlib.sha256()
    try:
        chunks: Iterator[bytes] = store.iter_chunks(entry.original_key, CHUNK_SIZE)
    except ObjectNotFound as error:
        raise _missing(entry, "Das Original", "original") from error
    with archive.open(info, "w", force_zip64=True) as target:
        for chunk in chunks:
            digest.update(chunk)
            target.write(chunk)
    if digest.hexdigest() != entry.sha256:
        raise _Failure("original_changed",
                       f"Das Original von Nr. {entry.number} „{entry.title}“ (Foto {entry.photo_id}) ist im Speicher "
                       "nicht mehr dasselbe wie beim Hochladen. Bitte sagen Sie der Verwaltung Bescheid.",
                       f"The original of no. {entry.number} '{entry.title}' (photo {entry.photo_id}) in storage is "
                       "no longer the file that was uploaded. Please tell the administrators.")


def _credit_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """One row per item. A photo left out is named only by its number and the reason: the package goes to a print
    shop, and nothing of a photo that may not be printed (its title, its people) goes with it."""
    rows = []
    for e in entries:
        if e.printable:
            row = {"number": e.number, "file": e.file, "title": e.title, "caption": e.caption,
                   "photographer": e.photographer, "association": e.association, "licence": e.licence,
                   "attribution": e.attribution, "consent_scope": e.consent_scope, "included": "ja/yes"}
        else:
            row = {"number": e.number, "included": "nein/no", "reason_de": e.reason_de, "reason_en": e.reason_en}
        rows.append({name: spreadsheet_safe(value) for name, value in row.items()})
    return rows


def credits_csv(entries: list[Entry]) -> bytes:
    """Semicolon-separated with a byte order mark: German Excel opens it in columns, with its umlauts right."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(_credit_rows(entries))
    return text.getvalue().encode("utf-8-sig")


def credits_json(exhibition: Exhibition, entries: list[Entry], language: str, made: datetime) -> bytes:
    photos: list[dict[str, Any]] = []
    for e in entries:
        if not e.printable:
            photos.append({"number": e.number, "included": False, "reason": {"de": e.reason_de, "en": e.reason_en}})
            continue
        row = asdict(e)
        for private in ("original_key", "sha256", "extension", "preview_key", "thumb_key", "reason_de", "reason_en"):
            row.pop(private)
        row["included"] = e.printable
        row["reason"] = None if e.printable else {"de": e.reason_de, "en": e.reason_en}
        row["sha256"] = e.sha256 if e.printable else None
        photos.append(row)
    document = {
        "exhibition": {"title": exhibition.title, "venue": exhibition.venue,
                       "starts_on": exhibition.starts_on.isoformat() if exhibition.starts_on else None,
                       "ends_on": exhibition.ends_on.isoformat() if exhibition.ends_on else None},
        "language": language, "made_at": made.isoformat(timespec="seconds"),
        "included": sum(e.printable for e in entries), "excluded": sum(not e.printable for e in entries),
        "photos": photos,
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def readme(exhibition: Exhibition, entries: list[Entry], language: str, made: datetime) -> str:
    """What the package is, in German and in English; the photos left out and why."""
    included = [e for e in entries if e.printable]
    excluded = [e for e in entries if not e.printable]
    when_de, when_en = date_range(exhibition, "de"), date_range(exhibition, "en")
    de = [
        f"Druckpaket: {exhibition.title}",
        "Fotoprojekt Brücken – das gemeinsame Fotoarchiv der Partnerschaftsvereine Ludwigshafen",
        "",
        "Ausstellung: " + ", ".join(p for p in (exhibition.title, when_de, exhibition.venue) if p),
        f"Erstellt am {made:%d.%m.%Y um %H:%M} Uhr.",
        "",
        f"Enthalten: {len(included)} von {len(entries)} Fotos, als Originale in voller Auflösung, so wie sie "
        "hochgeladen wurden. Die Dateinamen beginnen mit der Nummer in der Ausstellung (Reihenfolge der Ausstellung).",
        "Bildnachweise und Lizenzen stehen in credits.csv (für Excel: Semikolon-getrennt, UTF-8) und credits.json.",
        "Bitte drucken Sie zu jedem Foto seinen Bildnachweis (Spalte „attribution“).",
        "",
    ]
    en = [
        f"Print package: {exhibition.title}",
        "Fotoprojekt Brücken – the shared photo archive of the Ludwigshafen partnership associations",
        "",
        "Exhibition: " + ", ".join(p for p in (exhibition.title, when_en, exhibition.venue) if p),
        f"Made on {made:%Y-%m-%d at %H:%M}.",
        "",
        f"Included: {len(included)} of {len(entries)} photos, as full-resolution originals exactly as uploaded. "
        "File names start with the photo's number in the exhibition (exhibition order).",
        "Credits and licences are in credits.csv (semicolon-separated, UTF-8) and credits.json.",
        "Please print each photo with its credit line (column 'attribution').",
        "",
    ]
    if excluded:
        de.append(f"Nicht enthalten: {len(excluded)} Fotos, weil ihre Rechte den Druck (noch) nicht abdecken:")
        en.append(f"Not included: {len(excluded)} photos, because their rights do not (yet) cover print:")
        for e in excluded:
            de.append(f"  Nr. {e.number}: {e.reason_de}")  # no title: nothing of it goes to the print shop
            en.append(f"  No. {e.number}: {e.reason_en}")
    else:
        de.append("Alle Fotos der Ausstellung sind enthalten.")
        en.append("Every photo of the exhibition is included.")
    first, second = (en, de) if language == "en" else (de, en)
    return "\r\n".join([*first, "", "-" * 72, "", *second, ""])


# --------------------------------------------------------------------------------------------------------------------
# PDF: a reportlab canvas that does not keep the document in memory


class _FileJPEG(pdfdoc.PDFImageXObject):
    """A JPEG image XObject that keeps only its file name; the bytes are read while the PDF is written."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.mask = None
        self.bitsPerComponent = 8
        with open(path, "rb") as handle:
            self.width, self.height, components = readJPEGInfo(handle)[:3]
        self.colorSpace = {1: "DeviceGray", 3: "DeviceRGB"}.get(components, "DeviceCMYK")
        self._dotrans = int(components == 4)
        self._filters = ("DCTDecode",)
        self.streamContent = b""

    def format(self, document: Any) -> bytes:
        self.streamContent = self.path.read_bytes()
        try:
            return bytes(super().format(document))
        finally:
            self.streamContent = b""


class _SinkFile(pdfdoc.PDFFile):
    """reportlab's output collector, writing into a file instead of a list of strings."""

    def __init__(self, sink: BinaryIO, version: Any) -> None:
        super().__init__(version)  # collects the header
        sink.write(b"".join(self.strings))
        self.strings = []
        self.write = sink.write


class _StreamingDocument(pdfdoc.PDFDocument):
    """``PDFDocument.format`` writing each object into ``sink`` as soon as it is formatted (reportlab's own joins
    the whole file in memory). No encryption, no signatures: exports use neither."""

    sink: BinaryIO

    def format(self) -> bytes:
        self.encrypt.prepare(self)
        catalog, info = self.Catalog, self.info
        self.Reference(catalog)
        self.Reference(info)
        output = _SinkFile(self.sink, self._pdfVersion)
        ids = []
        number = 1
        while number in self.numberToId:  # objects may add new ones while they are formatted
            oid = self.numberToId[number]
            formatted = pdfdoc.PDFIndirectObject(oid, self.idToObject[oid]).format(self)
            self.idToOffset[oid] = output.add(formatted)
            ids.append(oid)
            number += 1
        xref = pdfdoc.PDFCrossReferenceTable()
        xref.addsection(0, ids)
        start = output.add(xref.format(self))
        trailer = pdfdoc.PDFTrailer(startxref=start, Size=len(ids) + 1, Root=self.Reference(catalog),
                                    Info=self.Reference(info), ID=self.ID())
        output.add(trailer.format(self))
        return b""  # everything is in the file already


class _StreamingCanvas(Canvas):
    """A canvas for big documents: JPEGs as file references, pages compressed when finished, written as a stream."""

    def __init__(self, out: BinaryIO, **options: Any) -> None:
        super().__init__(out, pagesize=A4, pageCompression=1, **options)
        self._doc.__class__ = _StreamingDocument
        self._doc.sink = out
        self._images = 0

    def showPage(self) -> None:
        super().showPage()
        page = self._doc.Pages.pages[-1]
        content = pdfdoc.PDFStream(content=zlib.compress(page.stream.encode("utf-8")), filters=[])
        content.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName("FlateDecode")])
        page.Contents = content
        page.stream = None

    def draw_jpeg(self, path: Path, x: float, y: float, width: float, height: float) -> tuple[float, float, float,
                                                                                               float]:
        """Draws the JPEG at ``path`` fitted into the box, centred; returns the rectangle it took."""
        self._images += 1
        name = f"exportimage{self._images}"
        image = _FileJPEG(name, path)
        self._doc.Reference(image, self._doc.getXObjectName(name))
        scale = min(width / image.width, height / image.height)
        w, h = image.width * scale, image.height * scale
        left, bottom = x + (width - w) / 2, y + (height - h)
        self.saveState()
        self.translate(left, bottom)
        self.scale(w, h)
        self.doForm(name)
        self.restoreState()
        self._currentPageHasImages = 1
        return left, bottom, w, h


@cache
def _fonts() -> tuple[str, str]:
    """DejaVu Sans when the system has it (every partner city's letters), else reportlab's own Vera."""
    import reportlab

    folders = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
               Path("/usr/share/fonts/TTF"), Path("/usr/local/share/fonts")]
    for folder in folders:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            break
    else:
        own = Path(reportlab.__file__).parent / "fonts"
        regular, bold = own / "Vera.ttf", own / "VeraBd.ttf"
    pdfmetrics.registerFont(TTFont("ExportSans", str(regular)))
    pdfmetrics.registerFont(TTFont("ExportSans-Bold", str(bold)))
    return "ExportSans", "ExportSans-Bold"


@dataclass
class _PdfContext:
    store: ObjectStore
    staging: Path
    export_id: int
    temporary: list[Path]
    base_url: str
    language: str
    fonts: tuple[str, str] = field(default_factory=_fonts)

    def t(self, de: str, en: str) -> str:
        return en if self.language == "en" else de

    def fetch(self, key: str) -> Path:
        """The object at ``key`` in a temporary file (removed with the export's other temporary files)."""
        path = _temporary(self.staging, self.export_id, ".jpg", self.temporary)
        chunks = self.store.iter_chunks(key, CHUNK_SIZE)  # ObjectNotFound here, before the file is written
        with open(path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return path

    def photo_url(self, photo_id: int) -> str:
        return f"{self.base_url}/photos/{photo_id}"


PAGE_W, PAGE_H = A4
MARGIN = 48
GREY = colors.Color(0.35, 0.35, 0.35)
LIGHT = colors.Color(0.92, 0.92, 0.92)
RED = colors.Color(0.75, 0.1, 0.1)


class _Flow:
    """Lines of text down a page, onto new pages when one is full."""

    def __init__(self, canvas: _StreamingCanvas, context: _PdfContext, top: float,
                 on_new_page: Callable[[], float]) -> None:
        self.canvas, self.context, self.y, self.on_new_page = canvas, context, top, on_new_page

    def text(self, text: str, size: float = 11, bold: bool = False, color: Any = colors.black,
             leading: float | None = None, space_after: float = 0) -> None:
        font = self.context.fonts[1 if bold else 0]
        leading = leading or size * 1.35
        for line in simpleSplit(text, font, size, PAGE_W - 2 * MARGIN) or [""]:
            if self.y - leading < MARGIN + 20:
                self.canvas.showPage()
                self.y = self.on_new_page()
            self.y -= leading
            self.canvas.setFont(font, size)
            self.canvas.setFillColor(color)
            self.canvas.drawString(MARGIN, self.y, line)
        self.y -= space_after


def _footer(canvas: _StreamingCanvas, context: _PdfContext, exhibition: Exhibition) -> None:
    canvas.setFont(context.fonts[0], 8)
    canvas.setFillColor(GREY)
    canvas.drawString(MARGIN, MARGIN - 20, f"{exhibition.title} · Fotoprojekt Brücken")
    canvas.drawRightString(PAGE_W - MARGIN, MARGIN - 20, context.t(f"Seite {canvas.getPageNumber()}",
                                                                     f"Page {canvas.getPageNumber()}"))


def _lines(text: str, font: str, size: float, width: float, most: int) -> list[str]:
    lines = simpleSplit(text, font, size, width)
    if len(lines) > most:
        lines = lines[:most]
        while lines[-1] and pdfmetrics.stringWidth(lines[-1] + " …", font, size) > width:
            lines[-1] = lines[-1][:-1]
        lines[-1] = lines[-1].rstrip() + " …"
    return lines


def _qr(canvas: _StreamingCanvas, url: str, x: float, y: float, size: float) -> None:
    """The QR code as one vector path (a few hundred bytes compressed), clickable too."""
    widget = QrCodeWidget(url, barLevel="M")
    widget.qr.make()
    modules = widget.qr.modules
    count = len(modules)
    border = 2
    step = size / (count + 2 * border)
    canvas.setFillColor(colors.white)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    path = canvas.beginPath()
    for row, cells in enumerate(modules):
        column = 0
        while column < count:
            if cells[column]:
                start = column
                while column < count and cells[column]:
                    column += 1
                path.rect(x + (start + border) * step, y + size - (row + border + 1) * step,
                          (column - start) * step, step)
            else:
                column += 1
    canvas.setFillColor(colors.black)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.linkURL(url, (x, y, x + size, y + size), relative=0)


def _cover(canvas: _StreamingCanvas, context: _PdfContext, exhibition: Exhibition, entries: list[Entry],
           subtitle: str) -> None:
    regular, bold = context.fonts
    y = PAGE_H - MARGIN - 10
    canvas.setFillColor(GREY)
    canvas.setFont(regular, 11)
    canvas.drawString(MARGIN, y, "Fotoprojekt Brücken · " + subtitle)
    y -= 24
    canvas.setFillColor(colors.black)
    for line in _lines(exhibition.title, bold, 28, PAGE_W - 2 * MARGIN, 4):
        y -= 34
        canvas.setFont(bold, 28)
        canvas.drawString(MARGIN, y, line)
    y -= 14
    for line in (date_range(exhibition, context.language), exhibition.venue):
        if line:
            y -= 18
            canvas.setFont(regular, 13)
            canvas.drawString(MARGIN, y, line)
    y -= 16
    canvas.setStrokeColor(LIGHT)
    canvas.line(MARGIN, y, PAGE_W - MARGIN, y)
    y -= 8

    def new_page() -> float:
        return PAGE_H - MARGIN

    flow = _Flow(canvas, context, y, new_page)
    for paragraph in intro_paragraphs(exhibition.intro):
        for line in paragraph.split("\n"):
            flow.text(line, 11)
        flow.y -= 8
    count = len(entries)
    flow.y -= 12
    flow.text(context.t(f"{count} {'Foto' if count == 1 else 'Fotos'} · erstellt am {local_now():%d.%m.%Y}",
                        f"{count} {'photo' if count == 1 else 'photos'} · made on {local_now():%Y-%m-%d}"), 9,
              color=GREY)
    _footer(canvas, context, exhibition)
    canvas.showPage()


def _photo_page(canvas: _StreamingCanvas, context: _PdfContext, exhibition: Exhibition, entry: Entry,
                image: Path) -> None:
    """The photo as large as it fits at the top; below it the words, and the QR code on the right."""
    regular, bold = context.fonts
    text_width = PAGE_W - 2 * MARGIN - 110
    canvas.setFont(regular, 8)
    canvas.setFillColor(GREY)
    canvas.drawString(MARGIN, PAGE_H - MARGIN + 14, exhibition.title)
    canvas.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN + 14, context.t(f"Nr. {entry.number}",
                                                                            f"No. {entry.number}"))
    box_height = 470
    _, image_bottom, _, _ = canvas.draw_jpeg(image, MARGIN, PAGE_H - MARGIN - box_height, PAGE_W - 2 * MARGIN,
                                             box_height)
    y = image_bottom - 34
    canvas.setFillColor(colors.black)
    canvas.setFont(bold, 16)
    for line in _lines(f"{entry.number}  {entry.title}", bold, 16, text_width, 2):
        canvas.drawString(MARGIN, y, line)
        y -= 20
    y -= 4
    canvas.setFont(regular, 10.5)
    for line in _lines(entry.caption, regular, 10.5, text_width, 6):
        canvas.drawString(MARGIN, y, line)
        y -= 14
    y -= 8
    licence = entry.licence + (f" – {entry.licence_url}" if entry.licence_url else "")
    for label, value in ((context.t("Fotografie", "Photographer"), entry.photographer),
                         (context.t("Verein", "Association"), entry.association),
                         (context.t("Lizenz", "Licence"), licence)):
        canvas.setFont(bold, 9)
        canvas.setFillColor(GREY)
        canvas.drawString(MARGIN, y, label)
        canvas.setFont(regular, 9)
        canvas.setFillColor(colors.black)
        for line in _lines(value, regular, 9, text_width - 80, 2) or ["—"]:
            canvas.drawString(MARGIN + 80, y, line)
            y -= 12
    y -= 6
    canvas.drawString(MARGIN, y, entry.attribution)
    url = context.photo_url(entry.photo_id)
    size = 86
    qr_x, qr_y = PAGE_W - MARGIN - size, image_bottom - 20 - size
    _qr(canvas, url, qr_x, qr_y, size)
    canvas.setFont(regular, 7)
    canvas.setFillColor(GREY)
    canvas.drawCentredString(qr_x + size / 2, qr_y - 10, context.t("Online ansehen", "View online"))
    for n, line in enumerate(simpleSplit(url, regular, 6, size + 20)[:3]):
        canvas.drawCentredString(qr_x + size / 2, qr_y - 19 - 7 * n, line)
    _footer(canvas, context, exhibition)
    canvas.showPage()


def write_catalogue(out: BinaryIO, context: _PdfContext, exhibition: Exhibition, entries: list[Entry],
                    progress: Callable[[int], None]) -> None:
    """A cover, one page per printable photo (from its 1600 px preview), and a page listing the others."""
    canvas = _StreamingCanvas(out, lang=context.language)
    canvas.setTitle(f"{exhibition.title} – {context.t('Katalog', 'Catalogue')}")
    canvas.setAuthor("Fotoprojekt Brücken")
    printable = [e for e in entries if e.printable]
    _cover(canvas, context, exhibition, printable, context.t("Katalog", "Catalogue"))
    for count, entry in enumerate(entries, start=1):
        if entry.printable:
            if entry.preview_key is None:
                raise _missing(entry, "Die Vorschau", "preview")
            try:
                image = context.fetch(entry.preview_key)
            except ObjectNotFound as error:
                raise _missing(entry, "Die Vorschau", "preview") from error
            _photo_page(canvas, context, exhibition, entry, image)
        progress(count)
    # Photos left out are not named here: the catalogue is public print. The export's page lists them.
    canvas.save()


# --------------------------------------------------------------------------------------------------------------------
# The jury's contact sheet

COLUMNS, ROWS = 4, 5


def write_contact_sheet(out: BinaryIO, context: _PdfContext, exhibition: Exhibition, entries: list[Entry],
                        progress: Callable[[int], None]) -> None:
    """Every item (published or not: those are marked), 4 × 5 per page, with big numbers and short titles."""
    regular, bold = context.fonts
    canvas = _StreamingCanvas(out, lang=context.language)
    canvas.setTitle(f"{exhibition.title} – {context.t('Kontaktbogen', 'Contact sheet')}")
    canvas.setAuthor("Fotoprojekt Brücken")
    per_page = COLUMNS * ROWS
    pages = max(1, -(-len(entries) // per_page))
    header = 34
    cell_w = (PAGE_W - 2 * MARGIN) / COLUMNS
    cell_h = (PAGE_H - 2 * MARGIN - header) / ROWS
    image_h = cell_h - 44
    for count, entry in enumerate(entries, start=1):
        index = (count - 1) % per_page
        if index == 0:
            page = (count - 1) // per_page + 1
            canvas.setFont(bold, 14)
            canvas.setFillColor(colors.black)
            title = (_lines(exhibition.title, bold, 14, PAGE_W - 2 * MARGIN - 160, 1) or [""])[0]
            canvas.drawString(MARGIN, PAGE_H - MARGIN - 4, title)
            canvas.setFont(regular, 9)
            canvas.setFillColor(GREY)
            canvas.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN - 4,
                                   context.t(f"Kontaktbogen · Seite {page} von {pages}",
                                             f"Contact sheet · page {page} of {pages}"))
        column, row = index % COLUMNS, index // COLUMNS
        x = MARGIN + column * cell_w
        top = PAGE_H - MARGIN - header - row * cell_h
        box = (x + 4, top - image_h, cell_w - 8, image_h - 4)
        drawn = None
        if entry.thumb_key is not None:
            try:
                image = context.fetch(entry.thumb_key)
            except ObjectNotFound as error:
                raise _missing(entry, "Die Miniatur", "thumbnail") from error
            drawn = canvas.draw_jpeg(image, *box)
        else:
            canvas.setFillColor(LIGHT)
            canvas.rect(*box, stroke=0, fill=1)
            canvas.setFillColor(GREY)
            canvas.setFont(regular, 8)
            canvas.drawCentredString(box[0] + box[2] / 2, box[1] + box[3] / 2, context.t("kein Bild", "no image"))
        if not entry.published:
            canvas.setStrokeColor(RED)
            canvas.setLineWidth(2)
            canvas.rect(*(drawn or box), stroke=1, fill=0)
            canvas.setLineWidth(1)
        y = top - image_h - 18
        canvas.setFillColor(colors.black)
        canvas.setFont(bold, 18)
        canvas.drawString(x + 4, y, str(entry.number))
        number_w = pdfmetrics.stringWidth(str(entry.number), bold, 18) + 6
        canvas.setFont(regular, 7.5)
        for n, line in enumerate(_lines(entry.title, regular, 7.5, cell_w - 12 - number_w, 2)):
            canvas.drawString(x + 4 + number_w, y + 7 - 9 * n, line)
        if not entry.published:
            canvas.setFillColor(RED)
            canvas.setFont(bold, 7)
            canvas.drawString(x + 4, y - 14, context.t("nicht veröffentlicht", "not published") + " · "
                              + context.t(status_de(PhotoStatus(entry.status)),
                                          entry.status.replace("_", " ")))
        if index == per_page - 1 or count == len(entries):
            _footer(canvas, context, exhibition)
            canvas.showPage()
        progress(count)
    if not entries:
        canvas.showPage()
    canvas.save()
