"""Search: the Whoosh schema and analyzers, the single index writer, searchers, the query syntax people type,
facets and highlighted snippets.

Pure of Flask and of the database: callers hand in plain dataclasses (SearchDoc, SearchQuery, Viewer) and get plain
dataclasses back. The index is derived data; `SearchIndex.rebuild()` makes it anew from the database at any time.

Layout of ``index_dir`` (a rebuild swaps in a whole new index atomically while readers keep using the old one; the
folder itself may be a mount point or hold a ``.gitkeep``, so it is never replaced itself):

    CURRENT        the name of the live generation folder, replaced atomically (os.replace) by a rebuild
    gen-000007-1a2b3c4d/  a complete Whoosh index; the previous generation is kept for readers still open on it
    .tmp-*/        a rebuild in progress (a crashed one is removed by the next rebuild)
    .swap.lock     serialises create() and rebuild() across processes
    DAMAGED        written by a reader that found the live generation unreadable (its name inside): the writer then
                   rebuilds even though the index still opens (a garbled segment may only fail when searched)

How a search runs, and why (measured: Whoosh scoring every hit in Python is what makes it slow at 100 000 photos):
which photos match, the total, the facet counts and the date orders come from bitmasks (Python ints, one bit per
document) built from posting lists once per immutable segment and cached. Visibility is one of those bitmasks and
every result is cut by it, so an invisible photo can never reach a hit, a count, a snippet or a spelling
suggestion. Relevance is Whoosh's own BM25F (same formula and statistics; tests compare hits, order and scores with
Whoosh's search and with its bm25() per document): a segment's documents are grouped once by all that BM25F reads
of them (each term's weight, each field's length), so a ranking scores a few hundred such classes, at C speed (map,
compress, Counter) over the matched documents only.

An index commit (the outbox worker's, one every few seconds on a busy day) makes a new generation with new term
statistics, but Whoosh segments are immutable apart from deletions: each segment keeps its open reader and all
derived from it across commits, and a new generation only reads the new small segment, rescores classes and takes
over the facet bitmasks. So the first search after a commit costs a little more than a warm one, not a cold one.

This reads Whoosh 2.7's posting blocks, columns and segment readers directly where that is much faster, with a
generic fallback: keep whoosh-reloaded pinned to 2.7.x and the comparison tests green when upgrading.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import gc
import hashlib
import html
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import traceback
import unicodedata
import uuid
import warnings
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import lru_cache
from heapq import nlargest, nsmallest
from itertools import accumulate, chain, compress, groupby, islice, repeat
from math import log
from operator import add, ge, itemgetter, sub
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.analysis import Filter, IDTokenizer, RegexTokenizer
from whoosh.codec.whoosh3 import LENGTHS_COLUMN as _LENGTHS
from whoosh.columns import NumericColumn, VarBytesColumn
from whoosh.fields import COLUMN, STORED, FieldType, Schema
from whoosh.formats import Existence, Frequency, Positions
from whoosh.index import LockError
from whoosh.lang.snowball.english import EnglishStemmer
from whoosh.lang.snowball.german import GermanStemmer
from whoosh.lang.stopwords import stoplists
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import EmptyReader, MultiReader, SegmentReader, TermNotFound
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length, length_to_byte

from .errors import ArchiveError

logger = logging.getLogger(__name__)

PUBLISHED = "published"  # the only status a visitor ever finds
FACETS = ("association", "partner_city", "place", "year", "tag", "photographer", "licence")
SORTS = ("relevance", "newest", "oldest")
MAX_PER_PAGE = 100
SNIPPET_CHARS = 240


class SearchUnavailable(ArchiveError):
    """The index is missing, corrupt or unreadable. Search is derived data: the app answers 503 ("try again
    shortly") and an operator runs `brucken reindex`, rather than showing a half-broken result."""


class IndexBusy(ArchiveError):
    """Another writer held the index lock longer than the timeout. Whoosh allows one writer at a time; nothing was
    written, so the caller (the outbox job) simply retries later."""


# --------------------------------------------------------------------------------------------------------------------
# What callers hand in and get back


@dataclass(frozen=True)
class SearchDoc:
    """Everything search knows of one photo. Plain data, so the index can be fed from the outbox, a rebuild or a
    test without a database."""

    id: int
    status: str
    association: str  # slug
    association_name: str
    partner_city: str
    taken_at: datetime | None
    created_at: datetime
    title: str
    caption: str
    tags: tuple[str, ...] = ()
    photographer: str = ""
    place: str = ""
    licence: str = ""

    def stamp(self) -> str:
        """A short hash of every field. `search-check` compares the stamp stored in the index with the stamp of the
        database's current state, so any field that changed without reaching the index shows up as stale."""
        values = [[f.name, _plain(getattr(self, f.name))] for f in fields(self)]
        payload = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True)
class Viewer:
    """Who is searching. ``Viewer()`` is an anonymous visitor and finds published photos only; a member also finds
    the unpublished photos of their own association; curators and admins (``sees_everything``) find everything and
    may filter by status."""

    sees_everything: bool = False
    association: str | None = None


@dataclass
class SearchQuery:
    """A parsed search. Values of the same filter are alternatives (any of them), different filters all apply.
    ``status`` is honoured only for viewers who see everything. ``raw`` is what the person typed (filters
    included): spelling suggestions are made from it so that following one keeps the filters."""

    text: str = ""
    association: tuple[str, ...] = ()
    partner_city: tuple[str, ...] = ()
    place: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    photographer: tuple[str, ...] = ()
    licence: tuple[str, ...] = ()
    years: tuple[int, int] | None = None
    status: tuple[str, ...] = ()
    sort: str = "relevance"
    page: int = 1
    per_page: int = 20
    raw: str = ""


@dataclass(frozen=True)
class Hit:
    """One found photo. ``snippet`` is safe HTML: the caption escaped, with <mark> around the matched words."""

    id: int
    title: str
    caption: str
    snippet: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    """One page of hits, the total, and facet counts over all matching visible photos (not just the page).
    ``suggestion`` ("Meinten Sie …?") is the corrected query when nothing matched; ``fuzzy`` says the hits come from
    similar spellings because nothing matched exactly."""

    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]
    suggestion: str | None = None
    fuzzy: bool = False
    page: int = 1
    pages: int = 1


# --------------------------------------------------------------------------------------------------------------------
# Analysis: German first, English second
#
# Every word becomes a term in two fields: "de" (German Snowball stem) and "en" (English Snowball stem); a query word
# may match either, so "brücken" finds "Brücke" and "bridges" finds "bridge". Before the German stemmer, "ae/oe/ue"
# become "ä/ö/ü" (Snowball's German2 variant) and the stemmer then drops the umlauts, so Brücke, brücken, Bruecke,
# BRÜCKE and Brucke all meet in the term "bruck". Other accents are stripped (é→e, ş→s, ı→i). German and English stop
# words are one list for all fields: a word is either searchable everywhere or nowhere, so a query never requires a
# term that one field dropped.

_STOPWORDS = stoplists["de"] | stoplists["en"]
_GERMAN = GermanStemmer()
_ENGLISH = EnglishStemmer()
_SPECIAL = str.maketrans({"ı": "i", "ø": "o", "ł": "l", "đ": "d", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d",
                          "ß": "ss"})
_UMLAUTS = "äöü"
_GERMAN2 = re.compile(r"(?<!q)ue|ae|oe")


def _strip_accents(text: str, keep: str = "") -> str:
    if text.isascii():
        return text
    out = []
    for char in text.translate(_SPECIAL):
        if char.isascii() or char in keep:
            out.append(char)
        else:
            out.append("".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)))
    return "".join(out)


def _german2(word: str) -> str:
    return _GERMAN2.sub(lambda m: {"ue": "ü", "ae": "ä", "oe": "ö"}[m.group()], word)


_STOP_DE = frozenset(_german2(_strip_accents(w.casefold(), _UMLAUTS)) for w in _STOPWORDS)
_STOP_EN = frozenset(_strip_accents(w.casefold()) for w in _STOPWORDS)


@lru_cache(maxsize=100_000)
def _is_stop(folded: str) -> bool:
    return _german2(_strip_accents(folded, _UMLAUTS)) in _STOP_DE or _strip_accents(folded) in _STOP_EN


@lru_cache(maxsize=200_000)
def _de_term(token: str) -> str:
    word = unicodedata.normalize("NFC", token).casefold()
    if _is_stop(word):
        return ""
    return _strip_accents(_GERMAN.stem(_german2(_strip_accents(word, _UMLAUTS))))


@lru_cache(maxsize=200_000)
def _en_term(token: str) -> str:
    word = unicodedata.normalize("NFC", token).casefold()
    if _is_stop(word):
        return ""
    return _ENGLISH.stem(_strip_accents(word))


_NORMALIZERS = {"de": _de_term, "en": _en_term}


class _Normalize(Filter):
    """Turns each token into its term, or drops it (stop words). Positions are renumbered after dropping, the same
    way in documents and queries, so the phrase "Brücke über den Rhein" matches the caption it was copied from."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, tokens: Iterable[Any]) -> Iterator[Any]:
        normalize = _NORMALIZERS[self.kind]
        position = 0
        for token in tokens:
            text = normalize(token.text)
            if not text:
                continue
            token.text = text
            if token.positions:
                token.pos = position
                position += 1
            yield token


_DE = RegexTokenizer() | _Normalize("de")
_EN = RegexTokenizer() | _Normalize("en")
_ANALYZERS = {"de": _DE, "en": _EN}
_TAG_SEPARATOR = "\x1f"


def _analyze(analyzer: Any, text: str) -> list[str]:
    return [token.text for token in analyzer(text)]


def _schema() -> Schema:
    """Title, caption, tags and place go into "de" (German stems, with positions for phrases) and "en" (English
    stems). Posting lists are read once per segment and cached (bitmasks, scores), so positions cost little at search
    time; every extra field, though, costs a rebuild ~15 %: there is no separate phrase or spelling field. Facet
    values are exact terms (one posting list per value: the bitmasks). They are marked scorable only so that Whoosh
    keeps a length column for them: without one, its segment writer stats a file for every single posting."""

    def exact() -> FieldType:
        return FieldType(Existence(), IDTokenizer(), scorable=True)

    return Schema(
        key=FieldType(Existence(), IDTokenizer(), scorable=True, unique=True),  # "p<id>"; "meta": the position
        kind=exact(),  # "photo" on every photo (not on the meta document)
        status=exact(),
        association=exact(),
        partner_city=exact(),
        place=exact(),
        year=exact(),
        photographer=exact(),
        licence=exact(),
        tag=FieldType(Existence(), RegexTokenizer(f"[^{_TAG_SEPARATOR}]+"), scorable=True),
        de=FieldType(Positions(), _DE, scorable=True),
        en=FieldType(Frequency(), _EN, scorable=True),
        sid=STORED(),
        title=STORED(),
        caption=STORED(),
        more=STORED(),  # tags and place as text: where a spelling suggestion finds the word as written
        position=STORED(),
        pid=COLUMN(NumericColumn("q", default=0)),
        stamp=COLUMN(VarBytesColumn()),
        knew=COLUMN(NumericColumn("q", default=2**63 - 1)),
        kold=COLUMN(NumericColumn("q", default=2**63 - 1)),
    )


_META = "meta"
_EPOCH = calendar.timegm((1800, 1, 1, 0, 0, 0))
_T_MAX = 2**35 - 1  # seconds since 1800: until the year 2888
_ID_MAX = 2**27 - 1


def _key(photo_id: int) -> str:
    return f"p{photo_id}"


def _sort_keys(doc: SearchDoc) -> tuple[int, int]:
    """One 63-bit integer per order (newest, oldest): photos without a date come last in both, ties by id."""
    ident = min(max(doc.id, 0), _ID_MAX)
    if doc.taken_at is None:
        return (1 << 62) | (_ID_MAX - ident), (1 << 62) | ident
    moment = doc.taken_at
    seconds = calendar.timegm(moment.utctimetuple() if moment.tzinfo else moment.timetuple())
    taken = min(max(seconds - _EPOCH, 0), _T_MAX)
    return ((_T_MAX - taken) << 27) | (_ID_MAX - ident), (taken << 27) | ident


def _clean(value: str) -> str:
    return " ".join((value or "").split())


def _document(doc: SearchDoc) -> dict[str, Any]:
    tags = tuple(dict.fromkeys(_clean(t) for t in doc.tags if _clean(t)))
    newest, oldest = _sort_keys(doc)
    document: dict[str, Any] = {
        "key": _key(doc.id), "kind": "photo", "status": doc.status, "sid": doc.id, "title": doc.title,
        "caption": doc.caption, "pid": doc.id, "stamp": doc.stamp().encode("ascii"), "knew": newest, "kold": oldest,
    }
    for name in ("association", "partner_city", "place", "photographer", "licence"):
        value = _clean(getattr(doc, name))
        if value:
            document[name] = value
    if doc.taken_at is not None:
        document["year"] = str(doc.taken_at.year)
    if tags:
        document["tag"] = _TAG_SEPARATOR.join(tags)
    body = "\n".join(part for part in (doc.title, doc.caption, "\n".join(tags), _clean(doc.place)) if part)
    if body.strip():
        document.update(de=body, en=body)
    if tags or doc.place:
        document["more"] = "\n".join((*tags, _clean(doc.place)))
    return document


# --------------------------------------------------------------------------------------------------------------------
# Query syntax

_FIELD_NAMES = {
    "verein": "association", "association": "association",
    "partnerstadt": "partner_city", "stadt": "partner_city", "city": "partner_city", "partner_city": "partner_city",
    "ort": "place", "place": "place",
    "jahr": "years", "year": "years",
    "tag": "tag", "schlagwort": "tag",
    "fotograf": "photographer", "fotografin": "photographer", "photographer": "photographer", "by": "photographer",
    "lizenz": "licence", "licence": "licence", "license": "licence",
    "status": "status",
}
_MULTI = ("association", "partner_city", "place", "tag", "photographer", "licence", "status")
_SORT_NAMES = {"relevance": "relevance", "relevanz": "relevance", "newest": "newest", "neueste": "newest",
               "oldest": "oldest", "älteste": "oldest", "aelteste": "oldest"}
_QUERY_TOKEN = re.compile(r'(?P<name>[^\W\d]\w*):(?:"(?P<quoted>[^"]*)"?|(?P<value>[^\s"]+))|-?"[^"]*"?|[^\s"]+')
_YEAR_RANGE = re.compile(r"(\d{4})?\s*(?:\.\.|-|–|—)\s*(\d{4})?")


def _parse_years(value: str) -> tuple[int, int] | None:
    value = value.strip()
    if re.fullmatch(r"\d{4}", value):
        return int(value), int(value)
    match = _YEAR_RANGE.fullmatch(value)
    if not match or not (match.group(1) or match.group(2)):
        return None
    low, high = int(match.group(1) or 0), int(match.group(2) or 9999)
    return (low, high) if low <= high else (high, low)


def _span(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def parse_query(raw: str, **filters: Any) -> SearchQuery:
    """Pulls ``field:value`` tokens (German and English names: verein/association, stadt/city, ort/place,
    jahr/year with ranges like 2019..2023, tag, fotograf/by, lizenz/licence, status) out of what the person typed;
    the rest stays free text. Values may be quoted (``by:"Anna Schmidt"``). Filters given as arguments (from URL
    parameters: the same names, ``years=(lo, hi)``, ``sort``, ``page``, ``per_page``) are merged in: values of the
    same filter are alternatives, so a year range from the text and one from the URL become one span.

    A token that is not a usable filter (an unknown name such as ``http:``, ``10:30``, or a bad value such as
    ``jahr:abc``) stays in the text exactly as typed: nothing the person wrote is silently dropped, and a
    mistyped filter then shows up as "no hits" rather than as a search that ignored it."""
    raw = raw or ""
    words: list[str] = []
    found: dict[str, list[str]] = {name: [] for name in _MULTI}
    years: tuple[int, int] | None = None
    for match in _QUERY_TOKEN.finditer(raw):
        name = match.group("name")
        target = _FIELD_NAMES.get(name.casefold()) if name else None
        value = match.group("quoted") if match.group("quoted") is not None else match.group("value")
        if target is None or value is None:
            words.append(match.group(0))
            continue
        value = _clean(value)
        if target == "years":
            span = _parse_years(value)
            if span is None:
                words.append(match.group(0))
            else:
                years = _span(years, span)
        elif value:
            found[target].append(value)
    settings: dict[str, Any] = {}
    for name, value in filters.items():
        if name in _MULTI:
            values = (value,) if isinstance(value, str) else tuple(value or ())
            found[name].extend(_clean(str(v)) for v in values if v is not None and _clean(str(v)))
        elif name == "years":
            if value:
                low, high = int(value[0]), int(value[1])
                years = _span(years, (min(low, high), max(low, high)))
        elif name in ("sort", "page", "per_page"):
            settings[name] = value
        else:
            raise TypeError(f"parse_query() got an unknown filter {name!r}")
    found["association"] = [v.casefold() for v in found["association"]]
    found["status"] = [v.casefold() for v in found["status"]]
    return SearchQuery(
        text=" ".join(words),
        **{name: tuple(dict.fromkeys(values)) for name, values in found.items()},
        years=years,
        sort=_SORT_NAMES.get(str(settings.get("sort") or "relevance").casefold(), "relevance"),
        page=_int(settings.get("page"), 1, 1, 10_000),
        per_page=_int(settings.get("per_page"), 20, 1, MAX_PER_PAGE),
        raw=raw,
    )


def _int(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except (TypeError, ValueError):
        number = default
    return min(max(number, low), high)


@dataclass(frozen=True)
class _Clause:
    """One required (or excluded) part of the text: either a word (any of the alternative (field, term) pairs
    matches) or a phrase (German terms in this order, in the positions field)."""

    alternatives: tuple[tuple[str, str], ...] = ()
    phrase: tuple[str, ...] = ()
    surface: str = ""  # the word as typed, for the suggestion


_TEXT_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def _clauses(text: str) -> tuple[list[_Clause], list[_Clause]]:
    """Words are required (AND), ``-word`` excludes, ``"…"`` is a phrase; a word that splits into several terms
    (``Konrad-Adenauer-Brücke``) is a phrase too, so the hyphenated name is found as written."""
    positive: list[_Clause] = []
    negative: list[_Clause] = []
    for match in _TEXT_TOKEN.finditer(text):
        if match.group(3) is not None:
            token = match.group(3)
            excluded = token.startswith("-")
            token = token.lstrip("-")
        else:
            excluded, token = match.group(1) == "-", match.group(2)
        german = _analyze(_DE, token)
        if not german:
            continue
        if len(german) > 1:
            clause = _Clause(phrase=tuple(german))
        else:
            english = _analyze(_EN, token)
            surface = re.search(r"\w+", token)
            clause = _Clause(alternatives=(("de", german[0]),) + ((("en", english[0]),) if english else ()),
                             surface=surface.group() if surface else token)
        (negative if excluded else positive).append(clause)
    return positive, negative


def _max_edits(word: str) -> int:
    return 0 if len(word) <= 3 else 1 if len(word) <= 5 else 2


def _norm_value(value: str) -> str:
    """Facet values are matched forgivingly: case, spacing and umlaut spelling do not matter (ort:rheinbruecke)."""
    folded = unicodedata.normalize("NFC", _clean(value)).casefold()
    return _strip_accents(folded.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue"))


# --------------------------------------------------------------------------------------------------------------------
# Snippets


def _spans(text: str, terms: dict[str, set[str]]) -> list[tuple[int, int]]:
    spans: set[tuple[int, int]] = set()
    for name, wanted in terms.items():
        if wanted:
            for token in _ANALYZERS[name](text, chars=True):
                if token.text in wanted:
                    spans.add((token.startchar, token.endchar))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _snippet(text: str, terms: dict[str, set[str]], size: int = SNIPPET_CHARS) -> str:
    """The caption (or a window of it around the first match), HTML-escaped, with <mark> around matched words:
    safe to insert into a page as it is."""
    spans = _spans(text, terms)
    start, end = 0, len(text)
    if end > size:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - size // 4, len(text) - size))
        if start:
            space = text.find(" ", start, first) if first > start else -1
            start = space + 1 if space >= 0 else start
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            end = space if space > 0 else end
    parts = ["…" if start else ""]
    position = start
    for a, b in spans:
        if a < position or b > end:
            continue
        parts += [html.escape(text[position:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
        position = b
    parts += [html.escape(text[position:end]), "…" if end < len(text) else ""]
    return "".join(parts).strip()


# --------------------------------------------------------------------------------------------------------------------
# Bitmasks

_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_TO_FLAGS = bytes.maketrans(b"01", b"\x00\x01")


def _to_mask(ids: Iterable[int], size: int) -> int:
    ids = list(ids)
    if len(ids) < 64:
        mask = 0
        for docnum in ids:
            mask |= 1 << docnum
        return mask
    flags = bytearray(size)
    for docnum in ids:
        flags[docnum] = 1
    return int(flags.translate(_TO_DIGITS)[::-1], 2)


def _flags(mask: int, size: int) -> bytes:
    """One byte (0 or 1) per document: C-speed membership tests and compress() selectors."""
    return bin(mask)[:1:-1].ljust(size, "0").encode("ascii").translate(_TO_FLAGS)


def _postings(reader: Any, fieldname: str, text: str, weights: bool = False) -> tuple[list[int], list[float]]:
    """Segment-relative document numbers (and term weights) of a term, deleted documents included: the live mask
    removes those later, so what is derived from a segment stays valid while the segment lives. Reads the posting
    blocks of Whoosh 2.7's W3 codec a block at a time when it can (tests check the results against Whoosh's own
    matching and scoring); otherwise Whoosh's generic, slower path."""
    try:
        matcher = reader.postings(fieldname, text)
    except TermNotFound:
        return [], []
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    ids: list[int] = []
    found: list[float] = []
    if all(hasattr(matcher, name) for name in ("_read_data", "_data", "_byteids", "_read_weights", "_next_block",
                                               "_ids", "_weights")):
        while matcher.is_active():
            if matcher._ids is None:  # as Whoosh's _read_ids(), with the deltas summed at C speed
                if matcher._data is None:
                    matcher._read_data()
                deltas = matcher._data[0]
                matcher._ids = deltas if matcher._byteids else tuple(accumulate(deltas))
            ids.extend(matcher._ids[matcher._i:])
            if weights:
                if matcher._weights is None:
                    matcher._read_weights()
                found.extend(matcher._weights[matcher._i:])
            matcher._next_block()
        return ids, found
    while matcher.is_active():
        ids.append(matcher.id())
        if weights:
            found.append(matcher.weight())
        matcher.next()
    return ids, found


def _column(reader: Any, name: str, size: int, column: Any = None) -> list[Any]:
    """Every value of a numeric column of one segment. Reads the fixed-width bytes at once when it can (Whoosh reads
    them one struct.unpack per document: ~50 ms per 100 000)."""
    if column is None:
        if not reader.has_column(name):
            return [reader.schema[name].column_type.default_value()] * size
        column_reader = reader.column_reader(name, translate=False)
    else:
        column_reader = reader._perdoc.column_reader(name, column) if reader._perdoc.has_column(name) else None
        if column_reader is None:
            return [column.default_value()] * size
    if all(hasattr(column_reader, name) for name in ("_dbfile", "_basepos", "_count", "_typecode", "_default")):
        count = min(column_reader._count, size)
        values = array(column_reader._typecode)
        values.frombytes(column_reader._dbfile.get(column_reader._basepos, count * values.itemsize))
        if sys.byteorder == "little" and values.itemsize > 1:
            values.byteswap()  # Whoosh stores big-endian ("!")
        return values.tolist() + [column_reader._default] * (size - count)
    return [column_reader[docnum] for docnum in range(size)]


class _LRU(OrderedDict):
    """Least recently used first out, bounded by a count and, when ``budget`` (bytes) is given, by the rough size
    of what it keeps (``_cost``)."""

    def __init__(self, size: int, budget: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.budget = budget
        self.used = 0
        self.costs: dict[Any, int] = {}

    def remember(self, key: Any, value: Any) -> Any:
        if self.budget is not None:
            self.used -= self.costs.pop(key, 0)
            cost = self.costs[key] = _cost(value)
            self.used += cost
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size or (self.budget is not None and self.used > self.budget and len(self) > 1):
            old, _ = self.popitem(last=False)
            self.used -= self.costs.pop(old, 0)
        return value

    def recall(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


def _cost(value: Any) -> int:
    """Rough bytes of a cached value: arrays by their items, dicts ~100 bytes per entry, tuples summed, objects
    that know their own cost by it."""
    if isinstance(getattr(value, "cost", None), int):
        return value.cost
    if isinstance(value, array):
        return len(value) * value.itemsize
    if isinstance(value, dict):
        return 100 * len(value)
    if isinstance(value, tuple):
        return sum(map(_cost, value))
    return 64


class _Segment:
    """What is derived once from one Whoosh segment, with the segment's open reader. Segments are immutable apart
    from deletions (handled by the live mask, and by a fresh reader when they change), so this survives commits:
    after the worker applies a batch only its new small segment is read."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.size = reader.doc_count_all()
        self.masks = _LRU(1024)  # a mask costs up to size/8 bytes (12.5 kB per 100 000 documents)
        self.postings = _LRU(4096, 24 << 20)  # 12 bytes per posting: every text term of a 10 000 segment
        self.classes = _LRU(1024, 16 << 20)  # a clause's classes: ~10 bytes per document with one of its terms
        self.near = _LRU(256)  # terms within an edit distance: Whoosh's automaton walk costs ~4 ms per segment
        self.lexicons: dict[str, list[str]] = {}
        self.facet_masks: dict[str, dict[str, int]] = {}
        self.facet_pairs: dict[str, tuple[array, array, list[str]]] = {}
        self.facet_by_document: dict[str, tuple[array, array]] = {}
        self.columns: dict[str, list[Any]] = {}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.reader.close()

    def mask(self, fieldname: str, text: str) -> int:
        key = (fieldname, text)
        mask = self.masks.recall(key)
        if mask is None:
            # a scored term is ranked right after it matched: its postings are read (decoded) once for both
            ids = self.weighted(fieldname, text)[0] if fieldname in _SCORED else \
                _postings(self.reader, fieldname, text)[0]
            mask = self.masks.remember(key, _to_mask(ids, self.size))
        return mask

    def weighted(self, fieldname: str, text: str) -> tuple[array, array]:
        """Postings with term weights of a scored term: kept, so a commit elsewhere costs no re-reading here."""
        key = (fieldname, text)
        found = self.postings.recall(key)
        if found is None:
            ids, weights = _postings(self.reader, fieldname, text, weights=True)
            found = self.postings.remember(key, (array("I", ids), array("d", weights)))
        return found

    def classified(self, terms: tuple[tuple[str, str], ...]) -> _Classes:
        found = self.classes.recall(terms)
        if found is None:
            found = self.classes.remember(terms, _Classes(self, terms))
        return found

    def within(self, fieldname: str, text: str, distance: int) -> list[str]:
        key = (fieldname, text, distance)
        found = self.near.recall(key)
        if found is None:
            found = []
            with contextlib.suppress(TermNotFound, KeyError):
                found = list(self.reader.terms_within(fieldname, text, distance, prefix=1))
            self.near.remember(key, found)
        return found

    def lexicon(self, fieldname: str) -> list[str]:
        if fieldname not in self.lexicons:
            try:
                terms = [term.decode("utf-8") for term in self.reader.lexicon(fieldname)]
            except TermNotFound:
                terms = []
            self.lexicons[fieldname] = terms
        return self.lexicons[fieldname]

    def value_masks(self, fieldname: str) -> dict[str, int]:
        if fieldname not in self.facet_masks:
            self.facet_masks[fieldname] = {value: _to_mask(_postings(self.reader, fieldname, value)[0], self.size)
                                           for value in self.lexicon(fieldname)}
        return self.facet_masks[fieldname]

    def pairs(self, fieldname: str) -> tuple[array, array, list[str]]:
        """(document, value code) pairs of a facet with many values: counted per query with compress() + Counter."""
        if fieldname not in self.facet_pairs:
            docs, codes = array("I"), array("I")
            values = self.lexicon(fieldname)
            for code, value in enumerate(values):
                ids = _postings(self.reader, fieldname, value)[0]
                docs.extend(ids)
                codes.extend([code] * len(ids))
            self.facet_pairs[fieldname] = (docs, codes, values)
        return self.facet_pairs[fieldname]

    def by_document(self, fieldname: str) -> tuple[array, array]:
        """The same pairs by document: the value codes of document d are codes[starts[d]:starts[d + 1]]."""
        if fieldname not in self.facet_by_document:
            docs, codes, _ = self.pairs(fieldname)
            counts = array("I", bytes(4 * self.size))
            for docnum in docs:
                counts[docnum] += 1
            order = sorted(range(len(docs)), key=docs.__getitem__)
            self.facet_by_document[fieldname] = (array("I", accumulate(counts, initial=0)),
                                                 array("I", map(codes.__getitem__, order)))
        return self.facet_by_document[fieldname]

    def column(self, name: str) -> list[Any]:
        if name not in self.columns:
            self.columns[name] = _column(self.reader, name, self.size)
        return self.columns[name]

    def lengths(self, fieldname: str) -> bytes:
        """Whoosh's per-document field lengths (one byte each, as BM25 reads them)."""
        key = f"_{fieldname}_len"
        if key not in self.columns:
            if hasattr(self.reader, "_perdoc"):
                self.columns[key] = bytes(_column(self.reader, key, self.size, column=_LENGTHS))
            else:
                self.columns[key] = bytes(length_to_byte(self.reader.doc_field_length(d, fieldname, 0) or 0)
                                          for d in range(self.size))
        return self.columns[key]

    def deleted(self) -> frozenset[int]:
        deleted = getattr(self.reader, "deleted_docs_set", None)
        if deleted is None:
            deleted = frozenset(d for d in range(self.size) if self.reader.is_deleted(d))
        return frozenset(deleted)


class _Classes:
    """The documents of one segment that have any of a clause's terms, grouped by all that BM25F reads of a
    document: each term's weight in it (None where absent) and the length of each field. Documents of one class
    score alike in every generation, so scoring a clause after a commit means scoring its few hundred classes, not
    its up to 100 000 documents; and the grouping, derived from the immutable segment, survives commits."""

    def __init__(self, segment: _Segment, terms: tuple[tuple[str, str], ...]) -> None:
        fields = tuple(dict.fromkeys(name for name, _ in terms))
        postings = [segment.weighted(name, text) for name, text in terms]
        docs = sorted(set().union(*(ids for ids, _ in postings)))
        columns: list[Iterator[Any]] = [map(dict(zip(ids, weights, strict=True)).get, docs)
                                        for ids, weights in postings]
        columns += [map(segment.lengths(name).__getitem__, docs) for name in fields]
        keys = list(zip(*columns, strict=True))
        numbers = {key: number for number, key in enumerate(dict.fromkeys(keys))}
        self.keys: list[tuple[Any, ...]] = list(numbers)  # per class: the weights, then the length bytes
        self.docs = array("I", docs)  # every document with any of the terms, ascending
        self.codes = array("H" if len(numbers) < 1 << 16 else "I", map(numbers.__getitem__, keys))  # their classes
        self._members: list[array] | None = None
        self.cost = (8 + self.codes.itemsize) * len(docs) + 100 * len(numbers)

    def members(self) -> list[array]:
        """Per class its documents, ascending (made when first needed: only a best-first walk needs them)."""
        if self._members is None:
            members = [array("I") for _ in self.keys]
            for docnum, code in zip(self.docs, self.codes, strict=True):
                members[code].append(docnum)
            self._members = members
        return self._members


_SCORED = ("de", "en")
_B, _K1 = 0.75, 1.2  # Whoosh's BM25F defaults
_MASKED_FACET_LIMIT = 256  # facets with up to this many values count by bitmask, larger ones by compress+Counter
_SPARSE_RATIO = 8  # ... or, when fewer than 1/8 as many documents matched as the facet has pairs, document by document
_LOOKUP_RATIO = 16  # fewer matches in a segment than 1/16 of a clause's postings there: scored one by one


class _Generation:
    """One index commit: its searcher, its segments (shared with earlier generations where unchanged) and what is
    derived from the whole commit. Replaced when the index changes, so what lives here is what depends on every
    segment (offsets, term statistics) and is cheap to derive again."""

    def __init__(self, name: str, number: int, index: Any, searcher: Any, segments: list[_Segment],
                 previous: _Generation | None = None) -> None:
        self.name = name
        self.number = number
        self.index = index
        self.searcher = searcher
        self.leaves: list[tuple[_Segment, int]] = []
        offset = 0
        for segment in segments:  # the offsets Whoosh's MultiReader gives the same segments
            self.leaves.append((segment, offset))
            offset += segment.size
        self.size = offset
        live = (1 << self.size) - 1
        for segment, offset in self.leaves:
            deleted = segment.deleted()
            if deleted:
                live &= ~(_to_mask(deleted, segment.size) << offset)
        self.live = live
        self._terms = _LRU(1024)
        self._phrases = _LRU(128)
        self._facets: dict[str, list[tuple[str, int]] | None] = {}
        self._lexicons: dict[str, list[str]] = {}
        self._normalized: dict[str, dict[str, list[str]]] = {}
        self._keys: dict[str, list[int]] = {}
        self._idfs: dict[tuple[str, str], float | None] = {}
        self._norms: dict[str, list[float]] = {}
        self._scored = _LRU(256, 64 << 20)
        if previous is not None:
            self._inherit(previous)

    def up_to_date(self) -> bool:
        return self.index.latest_generation() == self.number

    # masks ------------------------------------------------------------------------------------------------------
    def term(self, fieldname: str, text: str) -> int:
        key = (fieldname, text)
        mask = self._terms.recall(key)
        if mask is None:
            mask = 0
            for segment, offset in self.leaves:
                part = segment.mask(fieldname, text)
                if part:
                    mask = part if not (mask or offset) else mask | (part << offset)  # one segment: no copy
            self._terms.remember(key, mask)
        return mask

    def phrase(self, terms: tuple[str, ...]) -> int:
        mask = self._phrases.recall(terms)
        if mask is None:
            docs = self.searcher.docs_for_query(wq.Phrase("de", list(terms)))
            mask = self._phrases.remember(terms, _to_mask(docs, self.size))
        return mask

    def clause(self, clause: _Clause) -> int:
        if clause.phrase:
            return self.phrase(clause.phrase)
        mask = 0
        for name, text in clause.alternatives:
            mask |= self.term(name, text)
        return mask

    def text(self, positive: list[_Clause], negative: list[_Clause]) -> int:
        mask = self.live
        for clause in positive:
            mask &= self.clause(clause)
            if not mask:
                return 0
        for clause in negative:
            mask &= ~self.clause(clause)
        return mask

    def visible(self, viewer: Viewer, statuses: tuple[str, ...]) -> int:
        if viewer.sees_everything:
            if statuses:
                mask = 0
                for status in statuses:
                    mask |= self.term("status", status)
            else:
                mask = self.term("kind", "photo")
        else:
            mask = self.term("status", PUBLISHED)
            if viewer.association:
                mask |= self.term("association", viewer.association)
        return mask & self.live

    def lexicon(self, fieldname: str) -> list[str]:
        if fieldname not in self._lexicons:
            values: set[str] = set()
            for segment, _ in self.leaves:
                values.update(segment.lexicon(fieldname))
            self._lexicons[fieldname] = sorted(values)
        return self._lexicons[fieldname]

    def value(self, fieldname: str, value: str) -> int:
        if fieldname not in self._normalized:
            normalized: dict[str, list[str]] = {}
            for known in self.lexicon(fieldname):
                normalized.setdefault(_norm_value(known), []).append(known)
            self._normalized[fieldname] = normalized
        mask = 0
        for known in self._normalized[fieldname].get(_norm_value(value), ()):
            mask |= self.term(fieldname, known)
        return mask

    def filters(self, query: SearchQuery) -> int:
        mask = self.live
        for name in ("association", "partner_city", "place", "tag", "photographer", "licence"):
            values = getattr(query, name)
            if values:
                either = 0
                for value in values:
                    either |= self.value(name, value)
                mask &= either
        if query.years is not None:
            low, high = query.years
            either = 0
            for year in self.lexicon("year"):
                if year.isdigit() and low <= int(year) <= high:
                    either |= self.term("year", year)
            mask &= either
        return mask

    # facets -----------------------------------------------------------------------------------------------------
    def facets(self, matched: int, flags: bytes, docs: list[int]) -> dict[str, dict[str, int]]:
        """Counts per value over all matched documents. Facets with few values: one bitmask AND per value. Facets
        with many values (photographers): a C-speed pass over the facet's (document, value) pairs, or, when only a
        few documents matched, a look at just those documents' values."""
        result: dict[str, dict[str, int]] = {}
        for name in FACETS:
            counts: Counter[str] = Counter()
            if matched:
                masks = self._facet_masks(name)
                if masks is not None:
                    for value, mask in masks:
                        count = (matched & mask).bit_count()
                        if count:
                            counts[value] = count
                else:
                    counts.update(self._count_pairs(name, flags, docs))
            if name == "year":
                ordered = sorted(counts.items(), key=lambda item: item[0], reverse=True)
            else:
                ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0].casefold(), item[0]))
            result[name] = dict(ordered)
        return result

    def _count_pairs(self, name: str, flags: bytes, docs: list[int]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for segment, offset in self.leaves:
            pair_docs, codes, values = segment.pairs(name)
            low, high = bisect_left(docs, offset), bisect_left(docs, offset + segment.size)
            if low == high:
                continue
            if (high - low) * _SPARSE_RATIO < len(pair_docs):  # few matches here: look at just their values
                starts, by_document = segment.by_document(name)
                local = map(sub, docs[low:high], repeat(offset))
                found = Counter(chain.from_iterable(by_document[starts[d]:starts[d + 1]] for d in local))
            else:  # one C-speed pass over the segment's pairs
                selector = flags[offset:offset + segment.size]
                found = Counter(compress(codes, map(selector.__getitem__, pair_docs)))
            for code, count in found.items():
                counts[values[code]] += count
        return counts

    def _facet_masks(self, name: str) -> list[tuple[str, int]] | None:
        if name not in self._facets:
            values = self.lexicon(name)
            if len(values) > _MASKED_FACET_LIMIT:
                self._facets[name] = None
            else:
                masks = dict.fromkeys(values, 0)
                for segment, offset in self.leaves:
                    for value, part in segment.value_masks(name).items():
                        masks[value] |= part << offset
                self._facets[name] = list(masks.items())
        return self._facets[name]

    def _inherit(self, previous: _Generation) -> None:
        """Takes over the facet bitmasks of the previous generation of the same index, for the leading segments
        both share at the same offsets (those bits mean the same documents; deleted ones are left out by the live
        mask): only the segments after them are added. A commit usually adds one small segment at the end, so a
        new generation costs a few hundred AND/ORs here instead of rebuilding every facet from every segment."""
        shared = 0
        for (segment, offset), (before, earlier) in zip(self.leaves, previous.leaves, strict=False):
            if segment is not before or offset != earlier:
                break
            shared += 1
        if not shared:
            return
        bits = self.leaves[shared - 1][1] + self.leaves[shared - 1][0].size
        kept = (1 << bits) - 1
        for name, found in previous._facets.items():
            if found is None:
                continue
            before = dict(found)
            tail: dict[str, int] = {}  # the segments after the shared ones, counted from ``bits``: small numbers
            for segment, offset in self.leaves[shared:]:
                for value, part in segment.value_masks(name).items():
                    tail[value] = tail.get(value, 0) | part << (offset - bits)
            masks = []
            for value in self.lexicon(name):
                mask = before.get(value, 0) & kept
                if value in tail:
                    mask |= tail[value] << bits
                masks.append((value, mask))
            self._facets[name] = masks

    # relevance --------------------------------------------------------------------------------------------------
    def idf(self, fieldname: str, text: str) -> float | None:
        """BM25's idf of a term, as Whoosh computes it; None when the term scores nothing."""
        key = (fieldname, text)
        if key not in self._idfs:
            found = None
            if fieldname in _SCORED:
                frequency = self.searcher.doc_frequency(fieldname, text)
                if frequency:
                    found = log(self.searcher.doc_count_all() / (frequency + 1)) + 1
            self._idfs[key] = found
        return self._idfs[key]

    def norms(self, fieldname: str) -> list[float]:
        """Per length byte: the length part of BM25's denominator, K1 * ((1 - B) + B * length / average length)."""
        if fieldname not in self._norms:
            average = self.searcher.avg_field_length(fieldname) or 1
            self._norms[fieldname] = [_K1 * ((1 - _B) + _B * byte_to_length(b) / average) for b in range(256)]
        return self._norms[fieldname]

    def scored(self, clause: _Clause) -> _Scored | None:
        """A clause's scores in this generation (a phrase counts as its German terms); None when nothing scores."""
        terms = tuple(term for term in clause.alternatives or [("de", word) for word in clause.phrase]
                      if self.idf(*term) is not None)
        if not terms:
            return None
        found = self._scored.recall(terms)
        if found is None:
            found = self._scored.remember(terms, _Scored(self, terms))
        return found

    def rank(self, docs: list[int], flags: bytes, clauses: list[_Clause],
             wanted: int) -> list[tuple[int, float]] | None:
        """The best ``wanted`` of the matched ``docs`` (``flags``) by BM25F over the German and English fields, ties
        newest taken first (then by document number). None when nothing can be scored. A single clause matching
        many documents walks its classes best first until it has a page; otherwise the matched documents are scored
        (by class, one C-speed pass per clause and segment, or one by one where few matched) and the top ``wanted``
        picked with a heap."""
        scored = [found for found in map(self.scored, clauses) if found is not None]
        if not scored:
            return None
        newest = self.keys("knew")
        if len(scored) == 1 and len(docs) * 16 > self.size:
            return scored[0].best(flags, wanted, newest)
        sums: list[float] | None = None
        for found in scored:
            values = found.matched(flags, docs)
            assert len(values) == len(docs)
            sums = values if sums is None else list(map(add, sums, values))
        assert sums is not None
        if len(sums) > wanted:
            threshold = nlargest(wanted, sums)[-1]
            keep = list(compress(range(len(sums)), map(ge, sums, repeat(threshold))))
        else:
            keep = list(range(len(sums)))
        best = sorted(keep, key=lambda i: (-sums[i], newest[docs[i]]))[:wanted]
        return [(docs[i], sums[i]) for i in best]

    # order ------------------------------------------------------------------------------------------------------
    def keys(self, column: str) -> list[int]:
        if column not in self._keys:
            keys: list[int] = []
            for segment, _ in self.leaves:
                keys.extend(segment.column(column))
            self._keys[column] = keys
        return self._keys[column]

    # spelling ---------------------------------------------------------------------------------------------------
    def within(self, fieldname: str, text: str, distance: int) -> set[str]:
        found: set[str] = set()
        for segment, _ in self.leaves:
            found.update(segment.within(fieldname, text, distance))
        return found

    def correct(self, clause: _Clause, visible: int) -> str | None:
        """The nearest word in the photos this viewer may see: the German stem fewest edits away (then the one in
        most visible photos), shown as it is written in one of those visible photos. So a suggestion can never be
        a word that only an unpublished caption has."""
        stem = clause.alternatives[0][1]
        for distance in range(1, _max_edits(clause.surface) + 1):
            ranked = []
            for candidate in sorted(self.within("de", stem, distance) - {stem})[:200]:
                mask = self.term("de", candidate) & visible
                if mask:
                    ranked.append((-mask.bit_count(), candidate, mask))
            for _, candidate, mask in sorted(ranked)[:3]:
                written = self.written(candidate, mask)
                if written:
                    return written
        return None

    def written(self, stem: str, mask: int) -> str | None:
        """How the word with this stem is most often written in (up to 20 of) the given documents."""
        forms: Counter[str] = Counter()
        for docnum in islice(compress(range(self.size), _flags(mask, self.size)), 20):
            stored = self.searcher.stored_fields(docnum)
            text = "\n".join(stored.get(name) or "" for name in ("title", "caption", "more"))
            forms.update(text[t.startchar:t.endchar] for t in _DE(text, chars=True) if t.text == stem)
        return min(forms, key=lambda form: (-forms[form], form)) if forms else None

    def fuzzy(self, clause: _Clause) -> _Clause:
        """Edit distance 1–2 (by the typed word's length), first letter fixed, on the German and English stems."""
        edits = _max_edits(clause.surface)
        if clause.phrase or not edits:
            return clause
        alternatives = set(clause.alternatives)
        for name, text in clause.alternatives:
            alternatives.update((name, found) for found in sorted(self.within(name, text, edits))[:64])
        return _Clause(alternatives=tuple(sorted(alternatives)), surface=clause.surface)

    # stamps -----------------------------------------------------------------------------------------------------
    def position(self) -> int:
        docnum = self.searcher.document_number(key=_META)
        if docnum is None:
            return 0
        return int(self.searcher.stored_fields(docnum).get("position", 0))

    def stamps(self) -> dict[int, str]:
        stamps: dict[int, str] = {}
        for segment, _ in self.leaves:
            deleted = segment.deleted()
            ids = _column(segment.reader, "pid", segment.size)
            values = list(segment.reader.column_reader("stamp")) if segment.reader.has_column("stamp") else []
            for docnum, (photo_id, stamp) in enumerate(zip(ids, values, strict=False)):
                if stamp and docnum not in deleted:
                    stamps[int(photo_id)] = stamp.decode("ascii")
        return stamps


class _Scored:
    """One clause's BM25F scores in one generation: the score of a class of documents (_Classes), or of one
    document from its postings, with the same float operations as Whoosh's bm25() and the terms added in clause
    order. Both ways give a document the very same score (the same key, the same function), so ranking may mix
    them. Cheap to make: a new generation (new term statistics) only rescores classes."""

    def __init__(self, generation: _Generation, terms: tuple[tuple[str, str], ...]) -> None:
        self.terms = terms
        self.leaves = generation.leaves
        self.fields = tuple(dict.fromkeys(name for name, _ in terms))
        self._idfs = [generation.idf(name, text) for name, text in terms]
        self._norms = [generation.norms(name) for name, _ in terms]
        self._lengths = [len(terms) + self.fields.index(name) for name, _ in terms]  # where a term's length byte is
        self._memo: dict[tuple[Any, ...], float] = {}
        self._tables: dict[int, list[float]] = {}  # per segment (index in leaves): the score of each class
        self._groups: list[tuple[float, list[tuple[array, int, int]]]] | None = None
        # what a ranking of every segment keeps (documents by class, scores): 12 bytes per document with a term
        self.cost = 12 * sum(generation.searcher.doc_frequency(name, text) for name, text in terms)

    def _score(self, key: tuple[Any, ...]) -> float:
        score = self._memo.get(key)
        if score is None:
            total: float | None = None
            for weight, idf, norms, at in zip(key, self._idfs, self._norms, self._lengths, strict=False):
                if weight is not None:
                    # Whoosh's bm25(): idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * length / average)))
                    value = idf * ((weight * (_K1 + 1)) / (weight + norms[key[at]]))
                    total = value if total is None else total + value
            assert total is not None  # a class, or a matched document, has at least one of the terms
            score = self._memo[key] = total
        return score

    def _classes(self, index: int) -> tuple[_Classes, list[float]]:
        """A segment's classes (kept by the segment: the same numbering whenever made) and their scores."""
        classes = self.leaves[index][0].classified(self.terms)
        table = self._tables.get(index)
        if table is None:
            table = self._tables[index] = list(map(self._score, classes.keys))
        return classes, table

    def matched(self, flags: bytes, docs: list[int]) -> list[float]:
        """The score of every matched document (``docs``, also as ``flags``), in document order. A matched document
        has one of the clause's terms, so it is among the clause's documents. Where only a few of a segment's
        documents with the terms matched, they are scored one by one (a binary search in each term's postings)
        rather than classifying the whole segment."""
        values: list[float] = []
        for index, (segment, offset) in enumerate(self.leaves):
            low, high = bisect_left(docs, offset), bisect_left(docs, offset + segment.size)
            if low == high:
                continue
            postings = [segment.weighted(name, text) for name, text in self.terms]
            if index in self._tables or self.terms in segment.classes or \
                    (high - low) * _LOOKUP_RATIO >= sum(len(ids) for ids, _ in postings):
                classes, table = self._classes(index)
                selector = flags[offset:offset + segment.size]
                values.extend(map(table.__getitem__, compress(classes.codes, map(selector.__getitem__, classes.docs))))
                continue
            lengths = [segment.lengths(name) for name in self.fields]
            for docnum in map(sub, docs[low:high], repeat(offset)):
                key: list[Any] = []
                for ids, weights in postings:  # as _Classes makes a key: the weights, then the length bytes
                    at = bisect_left(ids, docnum)
                    key.append(weights[at] if at < len(ids) and ids[at] == docnum else None)
                key += [column[docnum] for column in lengths]
                values.append(self._score(tuple(key)))
        return values

    def best(self, flags: bytes, wanted: int, newest: list[int]) -> list[tuple[int, float]]:
        """The best ``wanted`` matched documents: classes of equal score at a time, best first, each time the
        matched documents among them newest taken first, until there are enough."""
        if self._groups is None:
            entries = []
            for index, (segment, offset) in enumerate(self.leaves):
                classes, table = self._classes(index)
                entries += [(score, members, offset, segment.size)
                            for score, members in zip(table, classes.members(), strict=True)]
            entries.sort(key=itemgetter(0), reverse=True)  # stable: within one score, segments stay in order
            self._groups = [(score, [entry[1:] for entry in group])
                            for score, group in groupby(entries, key=itemgetter(0))]
        ranked: list[tuple[int, float]] = []
        local: dict[int, bytes] = {}
        for score, group in self._groups:
            found: list[int] = []
            for members, offset, size in group:
                selector = local.get(offset)
                if selector is None:
                    selector = local[offset] = flags[offset:offset + size]
                chosen = compress(members, map(selector.__getitem__, members))
                found.extend(map(add, chosen, repeat(offset)) if offset else chosen)
            if found:
                found.sort()
                found.sort(key=newest.__getitem__)  # stable: equal keys stay in document order
                ranked.extend(zip(found, repeat(score)))
                if len(ranked) >= wanted:
                    break
        return ranked[:wanted]


def _highlight_terms(clauses: list[_Clause]) -> dict[str, set[str]]:
    terms: dict[str, set[str]] = {"de": set(), "en": set()}
    for clause in clauses:
        terms["de"].update(clause.phrase)
        for name, text in clause.alternatives:
            terms[name].add(text)
    return terms


def _respell(text: str, fixes: dict[str, str]) -> str:
    for surface, word in fixes.items():
        if surface.isupper() and len(surface) > 1:
            word = word.upper()
        elif surface[:1].isupper():
            word = word[:1].upper() + word[1:]
        text = re.sub(rf"(?<!\w){re.escape(surface)}(?!\w)", lambda _m, w=word: w, text, count=1)
    return text


def _release(error: BaseException) -> None:
    """Whoosh leaves files open when it fails half-way through opening a damaged segment; they are closed when the
    traceback's frames go. Drop those now (it was logged as text), quietly, instead of at some later
    garbage collection that would warn about unclosed files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        seen: BaseException | None = error
        while seen is not None:
            seen.__traceback__ = None
            seen = seen.__cause__ or seen.__context__
        gc.collect()


# --------------------------------------------------------------------------------------------------------------------
# The index

# A rebuild writes one segment per 10 000 photos, each sorted in memory: one big segment would overflow Whoosh's
# posting pool and spill every posting through pickled temporary files (~40 % of the time). Big segments are never
# merged again by later commits (Whoosh merges only small ones), and searching 10 segments costs little here.
_SEGMENT_DOCS = 10_000
_BUILD_MB = 256  # Whoosh's estimate for the pool of one segment; the real peak of a rebuild is ~150 MB
_GENERATION = re.compile(r"gen-(\d{6,})-[0-9a-f]{8}")
_OPEN_ATTEMPTS = 10  # 50 ms apart, as Whoosh's own FileIndex.reader()


class SearchIndex:
    """The search index in ``index_dir``. One object per process: it keeps one searcher per index generation and
    refreshes it when the index changed (a directory listing per search: cheap). Thread-safe: searches of one
    process take turns (a Whoosh searcher is not meant for concurrent use); separate processes search in
    parallel. Writing goes through `apply()` (one writer at a time, across processes) and `rebuild()`."""

    def __init__(self, index_dir: Path, *, lock_timeout: float = 5.0) -> None:
        self.index_dir = Path(index_dir)
        self.lock_timeout = lock_timeout
        self._lock = threading.RLock()
        self._generation: _Generation | None = None
        self._segments: dict[str, _Segment] = {}

    # where the live index is ------------------------------------------------------------------------------------
    def _current(self) -> str | None:
        try:
            name = (self.index_dir / "CURRENT").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise SearchUnavailable(f"search index pointer unreadable: {error}") from error
        return name if _GENERATION.fullmatch(name) else None

    def exists(self) -> bool:
        """True when a complete index is in place (it may still turn out corrupt when read)."""
        name = self._current()
        return name is not None and whoosh_index.exists_in(str(self.index_dir / name))

    def damaged(self) -> bool:
        """True when a reader found the live generation unreadable (see ``_reading``); a rebuild clears it."""
        try:
            marked = (self.index_dir / "DAMAGED").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return False
        return marked != "" and marked == self._current()

    def _mark_damaged(self) -> None:
        """Tell the writer (another process, usually) that this generation must be rebuilt. Best effort: a reader
        that cannot even write this still answers 503, and the writer finds what it can itself."""
        with contextlib.suppress(Exception):
            name = self._current()
            if name is None:
                return
            marker = self.index_dir / f".DAMAGED-{uuid.uuid4().hex[:8]}"
            marker.write_text(name + "\n", encoding="ascii")
            os.replace(marker, self.index_dir / "DAMAGED")

    def create(self) -> None:
        """An empty index at position 0, unless one exists already (idempotent, safe from several processes)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with self._swap_lock():
            if not self.exists():
                self._build((), 0)

    def position(self) -> int:
        """The id of the last outbox event applied; it is stored in the index's own commit (a meta document), so it
        can never disagree with the index content."""
        with self._reading() as generation:
            return generation.position()

    # writing ----------------------------------------------------------------------------------------------------
    def apply(self, changes: Iterable[tuple[int, SearchDoc | None]], position: int) -> None:
        """Upserts the given documents, deletes ids mapped to None and records ``position``, all in one commit: a
        writer killed half-way leaves the previous commit intact. The last change of an id wins. Raises IndexBusy
        when another writer holds the lock longer than ``lock_timeout`` (never Whoosh's LockError)."""
        latest = dict(changes)  # read first: no database work while holding the index lock
        name = self._current()
        if name is None or not whoosh_index.exists_in(str(self.index_dir / name)):
            raise SearchUnavailable(f"no search index in {self.index_dir}: create() or rebuild() it first")
        try:
            ix = whoosh_index.open_dir(str(self.index_dir / name))
        except Exception as error:
            raise SearchUnavailable(f"search index unreadable: {error}") from error
        try:
            writer = ix.writer(timeout=self.lock_timeout)
        except LockError as error:
            raise IndexBusy(f"another writer holds the search index lock (waited {self.lock_timeout} s)") from error
        try:
            for photo_id, doc in latest.items():
                if doc is None:
                    writer.delete_by_term("key", _key(photo_id))
                else:
                    writer.update_document(**_document(doc))
            writer.update_document(key=_META, position=int(position))
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    def rebuild(self, docs: Iterable[SearchDoc], position: int) -> int:
        """Builds a complete new index in a sibling temporary folder, then swaps it in with one atomic rename of the
        CURRENT pointer. Readers keep answering from the old index until the swap; the previous generation stays on
        disk for readers still open on it. Returns the number of photos indexed."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with self._swap_lock():
            return self._build(docs, position)

    def _build(self, docs: Iterable[SearchDoc], position: int) -> int:
        for stale in self.index_dir.glob(".tmp-*"):  # a crashed rebuild (we hold the swap lock: none is running)
            shutil.rmtree(stale, ignore_errors=True)
        temporary = self.index_dir / f".tmp-{uuid.uuid4().hex[:12]}"
        temporary.mkdir()
        try:
            ix = whoosh_index.create_in(str(temporary), _schema())
            writer = ix.writer(limitmb=_BUILD_MB)
            count = 0
            seen: set[int] = set()
            try:
                for doc in docs:
                    if doc.id in seen:
                        continue
                    seen.add(doc.id)
                    writer.add_document(**_document(doc))
                    count += 1
                    if count % _SEGMENT_DOCS == 0:
                        writer.commit(merge=False)
                        writer = ix.writer(limitmb=_BUILD_MB)
                writer.add_document(key=_META, position=int(position))
            except BaseException:
                writer.cancel()
                raise
            writer.commit(merge=False)
            ix.close()
            previous = self._current()
            name = self._next_name()
            os.rename(temporary, self.index_dir / name)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        self._point_to(name)
        (self.index_dir / "DAMAGED").unlink(missing_ok=True)  # it named an older generation
        for old in self.index_dir.glob("gen-*"):
            if old.name not in (name, previous):
                shutil.rmtree(old, ignore_errors=True)
        return count

    def _next_name(self) -> str:
        numbers = [int(m.group(1)) for p in self.index_dir.iterdir() if (m := _GENERATION.fullmatch(p.name))]
        return f"gen-{max(numbers, default=0) + 1:06d}-{uuid.uuid4().hex[:8]}"  # never a name seen before

    def _point_to(self, name: str) -> None:
        pointer = self.index_dir / f".CURRENT-{uuid.uuid4().hex[:8]}"
        with open(pointer, "w", encoding="ascii") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, self.index_dir / "CURRENT")
        folder = os.open(self.index_dir, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    @contextlib.contextmanager
    def _swap_lock(self) -> Iterator[None]:
        with open(self.index_dir / ".swap.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # reading ----------------------------------------------------------------------------------------------------
    def _open(self) -> _Generation:
        name = self._current()
        if name is None:
            raise SearchUnavailable(f"no search index in {self.index_dir}")
        generation = self._generation
        if generation is not None and generation.name == name and generation.up_to_date():
            return generation
        if generation is None or generation.name != name:
            self._drop()  # a rebuild's new folder shares no segment with the old one
            generation = None
        # open_dir() reads the TOC to check it, _read_toc() below reads it again: once per folder is enough
        ix = generation.index if generation is not None else whoosh_index.open_dir(str(self.index_dir / name))
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                toc = ix._read_toc()
                segments = self._reuse(ix, toc)
                break
            except OSError:  # a writer merged segments away between the TOC and their files: read the new TOC
                if attempt == _OPEN_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
        reader = MultiReader([segment.reader for segment in segments], generation=toc.generation) if segments \
            else EmptyReader(toc.schema)
        searcher = Searcher(reader, fromindex=ix, closereader=False)  # the segments' readers are closed by _reuse
        self._generation = _Generation(name, toc.generation, ix, searcher, segments, generation)
        return self._generation

    def _reuse(self, ix: Any, toc: Any) -> list[_Segment]:
        """The segments of the commit described by ``toc``. A segment read by an earlier generation is reused with
        its open reader and all derived from it, or, when it gained deletions, with a fresh reader (Whoosh's reader
        reads deletions from the segment info it was opened with) but the same derived data. Not Whoosh's own
        reuse (Searcher.refresh()): in whoosh-reloaded 2.7.5 it keeps a segment's old reader although the segment
        gained deletions (an updated photo would show twice) and re-adds segments that a merge removed."""
        opened: dict[str, Any] = {}
        try:
            for info in toc.segments:
                known = self._segments.get(info.segment_id())
                if known is None or known.size != info.doc_count_all() or \
                        set(known.reader.segment().deleted_docs()) != set(info.deleted_docs()):
                    opened[info.segment_id()] = SegmentReader(ix.storage, toc.schema, info, generation=toc.generation)
        except BaseException:
            for reader in opened.values():
                with contextlib.suppress(Exception):
                    reader.close()
            raise
        segments: dict[str, _Segment] = {}
        for info in toc.segments:
            segid = info.segment_id()
            known = self._segments.pop(segid, None)
            reader = opened.get(segid)
            if reader is None:
                assert known is not None
                segments[segid] = known
            elif known is not None and known.size == reader.doc_count_all():
                known.close()
                known.reader = reader
                segments[segid] = known
            else:
                if known is not None:
                    known.close()
                segments[segid] = _Segment(reader)
        for gone in self._segments.values():  # merged away
            gone.close()
        self._segments = segments
        return list(segments.values())

    def _drop(self) -> None:
        if self._generation is not None:
            with contextlib.suppress(Exception):
                self._generation.searcher.close()
        self._generation = None
        for segment in self._segments.values():
            segment.close()
        self._segments = {}

    @contextlib.contextmanager
    def _reading(self) -> Iterator[_Generation]:
        """Any failure to read the index (missing, truncated, garbled files raise all kinds of errors deep inside
        Whoosh) becomes SearchUnavailable; it is logged with its traceback so a real bug stays visible."""
        with self._lock:
            try:
                yield self._open()
            except ArchiveError:
                self._drop()
                raise
            except Exception as error:
                self._drop()
                self._mark_damaged()
                # the traceback as text: a kept LogRecord must not keep Whoosh's open files alive (see _release)
                logger.error("search index in %s unreadable:\n%s", self.index_dir,
                             "".join(traceback.format_exception(error)))
                _release(error)
                raise SearchUnavailable(f"search index unreadable: {error!r}") from error

    def stamps(self) -> dict[int, str]:
        """Photo id -> SearchDoc.stamp() of every indexed photo, for `search-check`."""
        with self._reading() as generation:
            return generation.stamps()

    def search(self, query: SearchQuery, viewer: Viewer,
               hidden: Callable[[int], Iterable[int]] | None = None) -> SearchResult:
        """One page of what ``viewer`` may see. Raises SearchUnavailable when the index is missing or corrupt.

        ``hidden`` is asked with the index's position (the last outbox event applied) and names photos to leave
        out although the index still shows them: a change committed after that position (a photo unpublished a
        moment ago) hides the photo at once, not only when the writer has caught up."""
        query = replace(query, text=query.text or "", page=_int(query.page, 1, 1, 10_000),
                        per_page=_int(query.per_page, 20, 1, MAX_PER_PAGE),
                        sort=query.sort if query.sort in SORTS else "relevance")
        with self._reading() as generation:
            left_out = frozenset(hidden(generation.position())) if hidden is not None else frozenset()
            return self._search(generation, query, viewer, left_out)

    def _search(self, generation: _Generation, query: SearchQuery, viewer: Viewer,
                left_out: frozenset[int] = frozenset()) -> SearchResult:
        per_page, page, sort = query.per_page, query.page, query.sort
        visible = generation.visible(viewer, query.status if viewer.sees_everything else ())
        for photo_id in left_out:
            visible &= ~generation.term("key", _key(photo_id))
        allowed = visible & generation.filters(query) if visible else 0
        positive, negative = _clauses(query.text)
        matched = allowed & generation.text(positive, negative) if allowed else 0
        suggestion, fuzzy = None, False
        words = [clause for clause in positive if not clause.phrase]
        if not matched and words and allowed:
            suggestion = self._suggest(generation, query, positive, negative, allowed, visible)
            loose = [generation.fuzzy(clause) for clause in positive]
            matched = allowed & generation.text(loose, negative)
            if matched:
                positive, fuzzy = loose, True
        total = matched.bit_count()
        pages = max(1, -(-total // per_page))
        page = min(page, pages)
        flags = _flags(matched, generation.size)
        wanted = page * per_page
        ranked: list[tuple[int, float]] | None = None
        docs = list(compress(range(generation.size), flags)) if total else []
        facets = generation.facets(matched, flags, docs)
        if docs and sort == "relevance" and positive:
            ranked = generation.rank(docs, flags, positive, wanted)
        if ranked is None:
            keys = generation.keys("kold" if sort == "oldest" else "knew")
            ranked = [(docnum, 0.0) for docnum in nsmallest(wanted, docs, key=keys.__getitem__)]
        terms = _highlight_terms(positive)
        hits = []
        for docnum, score in ranked[(page - 1) * per_page:wanted]:
            stored = generation.searcher.stored_fields(docnum)
            title, caption = stored.get("title") or "", stored.get("caption") or ""
            hits.append(Hit(id=int(stored["sid"]), title=title, caption=caption,
                            snippet=_snippet(caption or title, terms), score=score))
        return SearchResult(total=total, hits=hits, facets=facets, suggestion=suggestion, fuzzy=fuzzy, page=page,
                            pages=pages)

    def _suggest(self, generation: _Generation, query: SearchQuery, positive: list[_Clause],
                 negative: list[_Clause], allowed: int, visible: int) -> str | None:
        """Corrects each word that no visible photo has, then offers the correction only if the corrected query finds
        something: every suggested word occurs in a photo this viewer may see."""
        fixes: dict[str, str] = {}
        for clause in positive:
            if clause.phrase or generation.clause(clause) & visible:
                continue
            word = generation.correct(clause, visible)
            if word and word.casefold() != clause.surface.casefold():
                fixes[clause.surface] = word
        if not fixes:
            return None
        corrected, excluded = _clauses(_respell(query.text, fixes))
        if not (allowed & generation.text(corrected, excluded)):
            return None
        return _respell(query.raw or query.text, fixes)
