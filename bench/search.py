"""Benchmark: archive.search (Whoosh, with facets) against SQLite FTS5 over the same generated photo records.

    python bench/search.py [--docs 100000] [--queries 200] [--seed 1] [--check 12] [--commit-every 1]

Generates seeded, realistic records (captions of 10-40 words mixing German and English, 7 associations, 8 partner
cities, 40 places, years 2000-2026, 200 tags, photographers, ~90 % published), builds the Whoosh index with
SearchIndex.rebuild() in a temporary folder (timed), and runs seeded queries of 1-3 words (a few with umlaut
spellings such as "Bruecke" or "BRÜCKE") through SearchIndex.search(): top 20 plus facet counts, as an anonymous
visitor and as a curator. Each set of queries runs once to warm up (reported as the cold pass: the first search of
each word since the index was built), then once timed. Then a busy archive: the anonymous queries once more with
an index commit of one changed photo (SearchIndex.apply, as the outbox worker makes it) before every query, or
every ``--commit-every`` queries, so each timed query opens a new index generation.

The same records go into SQLite FTS5 (``porter unicode61 remove_diacritics 2``) plus plain tables with the facet
columns; the same queries with the same visibility (published only) give the top 20 by bm25 and the counts for
association, year and tag (GROUP BY over the matching rows), timed the same way.

Everything runs pinned to one core. Percentiles are nearest-rank. Targets (from the issue): Whoosh p95 <= 50 ms
with facets (warm, cold pass and after commits), full rebuild of 100 000 records <= 60 s; the ratio
whoosh_p95 / fts5_p95 is printed for reference. The search page's server time through the Flask app is measured by
bench/search_page.py.

A consistency check compares, for a few queries, Whoosh's total and its association/year/tag counts with a count
in plain Python over the generated records: "stemmed" uses archive.search's own word analysis (so any difference
is a bug in the index or the bitmasks), "folded" only folds case, umlaut spellings and accents (differences are
expected: stemming finds more). Mismatches are reported, never fatal; invariants (no unpublished photo reaches a
visitor, facet sums, page size) are checked on every query.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import math
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 50.0
TARGET_BUILD_S = 60.0
TOP = 20

# --------------------------------------------------------------------------------------------------------------------
# Word pools. Order matters: earlier words are drawn more often (Zipf-like), so "Brücke" and "bridge" are common.


def _words(text: str) -> list[str]:
    return text.split()


GERMAN_NOUNS = _words("""
Brücke Rhein Nacht Stadt Fluss Hafen Ufer Brücken Abend Sonnenuntergang Schiff Rheinufer Himmel Wasser Lichter
Straße Fähre Morgen Nebel Kräne Schiffe Winter Sommer Kinder Freundschaft Partnerschaft Begegnung Besuch Fest Markt
Spiegelung Brückenpfeiler Hochstraße Möwen Wolken Sonne Regen Schnee Herbst Frühling Flüsse Kran Möwe Turm Kirche
Rathaus Bahnhof Hauptbahnhof Straßenbahn Garten Gärten Bäume Mond Sterne Schule Schüler Gäste Delegation Austausch
Jubiläum Konzert Chor Musik Tanz Ausstellung Fotografie Kamera Blick Aussicht Panorama Altstadt Innenstadt Fabrik
Industrie Schornstein Dampf Chemie Arbeiter Fahrrad Radweg Spaziergang Wanderung Picknick Park Wiese Blumen Rosen
Brunnen Platz Denkmal Museum Bibliothek Theater Bühne Fußball Stadion Mannschaft Straßenfest Feuerwerk Laterne
Dämmerung Gewitter Hochwasser Eis Frost Brot Kuchen Kaffee Wein Bier Küche Essen Familie Großmutter Händler Bäcker
Übergang Überfahrt Hilfe Spende Schulbau Dorf Berg Hügel Tal Küste Meer Strand Leuchtturm Boot Segelboot Ruderboot
Anlegestelle Schleuse Kanal Insel Mauer Tor Gebäude Hochhaus Fenster Dach Treppe Gasse Schatten Licht Farben
Weihnachtsmarkt Stadtfest Sonnenaufgang Grünfläche Bürgersteig Fußgänger Geländer Stahlträger Beton Baustelle
""")

GERMAN_ADJECTIVES = _words("""
alte neue große kleine schöne dunkle helle grüne blaue rote kalte warme frühe späte stille laute nasse goldene
neblige sonnige müde fröhliche gemeinsame historische
""")

GERMAN_FILLER = _words("der die das den dem und über am im an auf mit bei von vor nach unter zwischen zum zur ein eine")

ENGLISH_NOUNS = _words("""
bridge river night city sunset harbour shore bridges evening water sky lights street ferry morning fog cranes ship
ships winter summer children friendship partnership meeting visit festival market reflection pillar seagulls clouds
sun rain snow autumn spring crane seagull tower church station tram garden gardens trees moon stars school pupils
guests delegation exchange anniversary concert choir music dance exhibition photography camera view panorama
factory industry chimney steam workers bicycle walk hike picnic park meadow flowers roses fountain square monument
museum library theatre stage football stadium team fireworks lantern dusk thunderstorm flood ice frost bread cake
coffee wine beer kitchen food family grandmother baker crossing help donation village mountain hill valley coast sea
beach lighthouse boat sailboat pier lock canal island wall gate building window roof stairs alley shadow light
colours sunrise railing girder concrete pedestrians
""")

ENGLISH_ADJECTIVES = _words("""
old new big small beautiful dark bright green blue red cold warm early late quiet loud wet golden foggy sunny tired
happy shared historic
""")

ENGLISH_FILLER = _words("the a of over at in on with by from under between and to")

PROPER = _words("""
Ludwigshafen Mannheim Pasadena Lorient Havering Sumgait Gaziantep Swjahel Ruanda Kigali Neckar Pfalz Bretagne London
Kalifornien Türkei Ukraine Aserbaidschan Kurpfalz Hemshof Friesenheim Oggersheim Mundenheim Rheingönheim
""")

ASSOCIATIONS = (  # slug, name, partner city (archive/seed.py)
    ("pasadena", "Freundeskreis Ludwigshafen-Pasadena e.V.", "Pasadena"),
    ("lorient", "Deutsch-Französische Gesellschaft Ludwigshafen/Mannheim e.V.", "Lorient"),
    ("havering", "Bürgergruppe Havering", "Havering (London)"),
    ("sumgait", "Freundeskreis Ludwigshafen-Sumgait e.V.", "Sumgait"),
    ("gaziantep", "Freundeskreis Ludwigshafen-Gaziantep e.V.", "Gaziantep"),
    ("swjahel", "Kindernothilfe Rhein-Neckar für Swjahel e.V.", "Swjahel"),
    ("ruanda", "Arbeitskreis Ruanda", "Ruanda"),
)
HOME_CITY = "Ludwigshafen am Rhein"  # the eighth city: photos taken at home during a visit

PLACES = """
Konrad-Adenauer-Brücke|Kurt-Schumacher-Brücke|Hochstraße Nord|Rheinufer Süd|Berliner Platz|Ebertpark|Parkinsel|
Friedenspark|Hemshof|Rathausplatz|Hauptbahnhof Ludwigshafen|Wilhelm-Hack-Museum|Pfalzbau|Luitpoldhafen|Kaiserwörthhafen|
Maudacher Bruch|Willersinnweiher|Mannheimer Wasserturm|Neckarspitze|Colorado Street Bridge|Arroyo Seco|Rose Bowl|
Old Pasadena|Pont du Bonhomme|Port de Lorient|Île de Groix|Base de sous-marins|Romford Market|Upminster Windmill|
Rainham Marshes|Uferpromenade Sumgait|Kaspisches Meer|Zeugma Museum|Kastell Gaziantep|Bazar Gaziantep|
Swjahel Altstadt|Fluss Slutsch|Kigali Genocide Memorial|Kivusee|Nyungwe Wald
""".replace("\n", "").split("|")

LICENCES = ("CC BY 4.0", "CC BY-SA 4.0", "CC0", "Alle Rechte vorbehalten", "")

FIRST_NAMES = _words("""
Anna Jürgen Ayşe Marie Élodie John Leyla Oleksandr Jean-Pierre Zoë Mehmet Sabine Łukasz Gülşen Claire Thomas Amani
Kateryna Björn Ines Émile Nilüfer Dmytro Uwe Grace
""")
LAST_NAMES = _words("""
Müller Schmidt Yılmaz Dubois Le Goff Miller Məmmədova Kovalenko Weiß Böhm Şahin Nkurunziza Smith Brown Keller Özdemir
Hoffmann Lefèvre Schäfer Wagner Jones Uwimana Bondarenko Öztürk Groß
""")

STATUSES = (("published", 900), ("submitted", 30), ("in_review", 20), ("returned", 15), ("rejected", 15),
            ("withdrawn", 10), ("processing", 5), ("failed", 5))

MULTIWORD_TAGS = ("Rhein bei Nacht", "Street Photography", "Tag der Begegnung", "40 Jahre Partnerschaft",
                  "Schwarz-Weiß", "Black and White", "Luftbild", "Drohne", "Archivbild", "Zeitzeugen")

UMLAUT_QUERY_WORDS = ("Brücke", "Brücken", "Straße", "Fähre", "Möwen", "Kräne", "Flüsse", "Übergang", "Gärten",
                      "Hochstraße", "Bäume", "Dämmerung")


def _zipf(count: int, exponent: float = 0.75) -> list[float]:
    weights = [1 / (rank + 1) ** exponent for rank in range(count)]
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


class Pool:
    """Words drawn with Zipf-like weights (cumulative, for random.choices)."""

    def __init__(self, words: Iterable[str], exponent: float = 0.75) -> None:
        self.words = list(dict.fromkeys(words))
        self.cumulative = _zipf(len(self.words), exponent)

    def pick(self, rng: random.Random, k: int = 1) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=k)


@dataclass
class Corpus:
    docs: list[Any]  # archive.search.SearchDoc
    tags: list[str]
    photographers: list[str]


def _tags(rng: random.Random) -> list[str]:
    words = list(dict.fromkeys([*MULTIWORD_TAGS, *GERMAN_NOUNS[:110], *ENGLISH_NOUNS[:40], *PROPER,
                                *ENGLISH_NOUNS[40:]]))
    tags = words[:200]
    assert len(tags) == 200, len(tags)
    head, tail = tags[:30], tags[30:]
    rng.shuffle(tail)  # the most common tags stay the expected ones (Brücke, Rhein, …), the rest in a seeded order
    return head + tail


def _sentence(rng: random.Random, nouns: Pool, adjectives: list[str], filler: list[str], other: Pool,
              length: int) -> str:
    words: list[str] = []
    while len(words) < length:
        if words and rng.random() < 0.55:
            words.append(rng.choice(filler))
        if rng.random() < 0.3:
            words.append(rng.choice(adjectives))
        roll = rng.random()
        if roll < 0.1:
            words.append(other.pick(rng)[0])
        elif roll < 0.17:
            words.append(rng.choice(PROPER))
        else:
            words.append(nouns.pick(rng)[0])
    words = words[:length]
    text = []
    for index, word in enumerate(words):
        if index and rng.random() < 0.06:
            text[-1] += rng.choice((",", ".", " –"))
        text.append(word)
    sentence = " ".join(text)
    return sentence[:1].upper() + sentence[1:] + "."


def generate(count: int, seed: int) -> Corpus:
    from archive.search import SearchDoc

    rng = random.Random(seed)
    german, english = Pool(GERMAN_NOUNS), Pool(ENGLISH_NOUNS)
    tags = _tags(rng)
    tag_pool = Pool(tags, exponent=0.9)
    names = sorted({f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES})
    rng.shuffle(names)
    photographers = Pool(names[:300], exponent=0.8)
    places = Pool(PLACES, exponent=0.6)
    statuses = [s for s, _ in STATUSES]
    status_weights = [w for _, w in STATUSES]
    docs = []
    for ident in range(1, count + 1):
        slug, name, city = ASSOCIATIONS[min(int(rng.expovariate(0.45)), 6)]  # pasadena most active, ruanda least
        partner_city = city if rng.random() < 0.8 else rng.choice([*(a[2] for a in ASSOCIATIONS), HOME_CITY])
        language = rng.random()
        length = rng.randint(10, 40)
        if language < 0.55:
            caption = _sentence(rng, german, GERMAN_ADJECTIVES, GERMAN_FILLER, english, length)
        elif language < 0.85:
            caption = _sentence(rng, english, ENGLISH_ADJECTIVES, ENGLISH_FILLER, german, length)
        else:
            half = length // 2
            caption = (_sentence(rng, german, GERMAN_ADJECTIVES, GERMAN_FILLER, english, half) + " "
                       + _sentence(rng, english, ENGLISH_ADJECTIVES, ENGLISH_FILLER, german, length - half))
        if language < 0.55 or rng.random() < 0.3:
            title = _sentence(rng, german, GERMAN_ADJECTIVES, GERMAN_FILLER, english, rng.randint(2, 5))[:-1]
        else:
            title = _sentence(rng, english, ENGLISH_ADJECTIVES, ENGLISH_FILLER, german, rng.randint(2, 5))[:-1]
        if rng.random() < 0.01:
            taken = None
        else:
            taken = datetime(rng.randint(2000, 2026), 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
        created = datetime(2024, 1, 1) + timedelta(seconds=rng.randrange(2 * 365 * 86400))
        doc_tags = tuple(dict.fromkeys(tag_pool.pick(rng, rng.choice((0, 1, 2, 2, 3, 3, 4, 5, 6)))))
        docs.append(SearchDoc(
            id=ident, status=rng.choices(statuses, weights=status_weights)[0], association=slug,
            association_name=name, partner_city=partner_city, taken_at=taken, created_at=created, title=title,
            caption=caption, tags=doc_tags, photographer=photographers.pick(rng)[0] if rng.random() < 0.95 else "",
            place=places.pick(rng)[0] if rng.random() < 0.7 else "", licence=rng.choice(LICENCES)))
    return Corpus(docs=docs, tags=tags, photographers=names[:300])


def _umlaut_variant(rng: random.Random, word: str) -> str:
    return rng.choice((
        word.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("Ü", "Ue").replace("ß", "ss"),
        word.upper(),
        word.lower(),
        unicodedata.normalize("NFKD", word.replace("ß", "ss")).encode("ascii", "ignore").decode(),  # "brucke"
    ))


def make_queries(count: int, seed: int) -> list[str]:
    rng = random.Random(seed * 1_000_003 + 17)
    pools = [Pool(GERMAN_NOUNS, 0.6), Pool(ENGLISH_NOUNS, 0.6), Pool(PROPER, 0.5),
             Pool(GERMAN_ADJECTIVES + ENGLISH_ADJECTIVES, 0.3)]
    queries = []
    for _ in range(count):
        size = rng.choices((1, 2, 3), weights=(40, 40, 20))[0]
        words = []
        for _ in range(size):
            pool = rng.choices(pools, weights=(50, 35, 8, 7))[0]
            words.append(pool.pick(rng)[0])
        if rng.random() < 0.08:
            words[rng.randrange(size)] = _umlaut_variant(rng, rng.choice(UMLAUT_QUERY_WORDS))
        if rng.random() < 0.5:
            words = [w.lower() for w in words]
        queries.append(" ".join(dict.fromkeys(words)))
    return queries


# --------------------------------------------------------------------------------------------------------------------
# Measuring


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Timing:
    label: str
    seconds: list[float]

    def p(self, fraction: float) -> float:
        return _percentile(self.seconds, fraction) * 1000

    @property
    def mean(self) -> float:
        return sum(self.seconds) / len(self.seconds) * 1000


def run(label: str, fn: Callable[[str], Any], queries: list[str]) -> tuple[Timing, Timing, list[Any]]:
    """A cold (warm-up) pass and a timed pass; returns both timings and the results of the timed pass."""
    passes = []
    results: list[Any] = []
    for _ in range(2):
        gc.collect()
        seconds = []
        results = []
        for text in queries:
            start = time.perf_counter()
            result = fn(text)
            seconds.append(time.perf_counter() - start)
            results.append(result)
        passes.append(seconds)
    return Timing(f"{label} (cold pass)", passes[0]), Timing(label, passes[1]), results


def after_commits(index: Any, docs: list[Any], queries: list[str], every: int, viewer: Any,
                  seed: int) -> tuple[Timing, Timing, Timing]:
    """A busy archive: before every ``every``-th query the outbox worker commits one changed photo (its caption
    edited, SearchIndex.apply: a new index generation, a new small segment and a deletion in an old one). Returns
    the timings of all queries of this pass, of the first query after each commit (which opens the new generation),
    and of the commits."""
    from archive.search import SearchQuery

    rng = random.Random(seed)
    gc.collect()
    every_query, first_after, commits = [], [], []
    for number, text in enumerate(queries):
        if number % every == 0:
            doc = docs[rng.randrange(len(docs))]
            start = time.perf_counter()
            index.apply([(doc.id, replace(doc, caption=doc.caption + " Nachtrag"))], position=number + 1)
            commits.append(time.perf_counter() - start)
        start = time.perf_counter()
        index.search(SearchQuery(text=text, per_page=TOP), viewer)
        elapsed = time.perf_counter() - start
        every_query.append(elapsed)
        if number % every == 0:
            first_after.append(elapsed)
    label = "whoosh anonymous (after each commit)" if every == 1 else f"whoosh anonymous (commit every {every})"
    return (Timing(label, every_query), Timing("whoosh anonymous (first after commit)", first_after),
            Timing("whoosh commit (apply, 1 photo)", commits))


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _load() -> str:
    """Other processes on the machine disturb the timings even on a pinned core: say how busy it was."""
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    return "load average {:.2f} {:.2f} {:.2f} on {} cores".format(*os.getloadavg(), os.cpu_count())


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


# --------------------------------------------------------------------------------------------------------------------
# SQLite FTS5


@dataclass
class FtsResult:
    total: int
    ids: list[int]
    facets: dict[str, dict[str, int]]


class Fts5:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA cache_size = -131072")  # 128 MB: the whole database stays in SQLite's cache
        self.db.execute("PRAGMA temp_store = MEMORY")

    @staticmethod
    def available() -> bool:
        try:
            sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        except sqlite3.OperationalError:
            return False
        return True

    def build(self, docs: list[Any]) -> None:
        db = self.db
        db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE photos (id INTEGER PRIMARY KEY, status TEXT NOT NULL, association TEXT NOT NULL,
                                 partner_city TEXT, place TEXT, year INTEGER, photographer TEXT, licence TEXT);
            CREATE TABLE photo_tags (photo_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (photo_id, tag))
                WITHOUT ROWID;
            CREATE VIRTUAL TABLE fts USING fts5(title, caption, tags, place,
                                                tokenize = 'porter unicode61 remove_diacritics 2');
        """)
        db.execute("BEGIN")
        db.executemany("INSERT INTO photos VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (
            (d.id, d.status, d.association, d.partner_city, d.place, d.taken_at.year if d.taken_at else None,
             d.photographer, d.licence) for d in docs))
        db.executemany("INSERT INTO photo_tags VALUES (?, ?)", ((d.id, t) for d in docs for t in d.tags))
        db.executemany("INSERT INTO fts (rowid, title, caption, tags, place) VALUES (?, ?, ?, ?, ?)", (
            (d.id, d.title, d.caption, "\n".join(d.tags), d.place) for d in docs))
        db.execute("COMMIT")
        db.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        db.execute("ANALYZE")

    @staticmethod
    def match(text: str) -> str:
        return " ".join('"' + word.replace('"', '""') + '"' for word in re.findall(r"\w+", text))

    def search(self, text: str) -> FtsResult:
        """Published photos only: the top 20 by bm25, the total and counts by association, year and tag."""
        match = self.match(text)
        if not match:
            return FtsResult(0, [], {"association": {}, "year": {}, "tag": {}})
        db = self.db
        ids = [row[0] for row in db.execute(
            "SELECT p.id, p.status, bm25(fts) AS score FROM fts JOIN photos p ON p.id = fts.rowid"
            " WHERE fts MATCH ? AND p.status = 'published' ORDER BY score, p.id LIMIT ?", (match, TOP))]
        associations: Counter[str] = Counter()
        years: Counter[str] = Counter()
        total = 0
        for association, year, count in db.execute(
                "SELECT p.association, p.year, count(*) FROM fts JOIN photos p ON p.id = fts.rowid"
                " WHERE fts MATCH ? AND p.status = 'published' GROUP BY p.association, p.year", (match,)):
            total += count
            associations[association] += count
            if year is not None:
                years[str(year)] += count
        tags = dict(db.execute(
            "SELECT t.tag, count(*) FROM fts JOIN photos p ON p.id = fts.rowid JOIN photo_tags t ON t.photo_id = p.id"
            " WHERE fts MATCH ? AND p.status = 'published' GROUP BY t.tag", (match,)).fetchall())
        return FtsResult(total, ids, {"association": dict(associations), "year": dict(years), "tag": tags})


# --------------------------------------------------------------------------------------------------------------------
# Consistency: counts in plain Python over the generated records

TOKEN = re.compile(r"\w+(?:\.?\w+)*")  # Whoosh's default RegexTokenizer (without "*")
_GERMAN2 = re.compile(r"(?<!q)ue|ae|oe")


def fold(word: str) -> str:
    """Case, umlaut spelling (ue -> ü, as German2) and accents: Bruecke, BRÜCKE, brucke -> brucke. No stemming."""
    word = unicodedata.normalize("NFC", word).casefold()
    word = _GERMAN2.sub(lambda m: {"ue": "ü", "ae": "ä", "oe": "ö"}[m.group()], word)
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _body(doc: Any) -> str:
    return "\n".join(part for part in (doc.title, doc.caption, "\n".join(doc.tags), doc.place) if part)


def reference_counts(docs: list[Any], queries: list[str]) -> dict[str, dict[str, tuple[int, dict[str, Counter]]]]:
    """For each query and each mode ("stemmed", "folded"): the number of published records containing every query
    word, and their association/year/tag counts. Stop words are dropped from a query as archive.search does."""
    from archive import search as ours

    de_term = getattr(ours, "_de_term", None)
    en_term = getattr(ours, "_en_term", None)
    vocabulary: set[str] = set()
    for doc in docs:
        vocabulary.update(TOKEN.findall(_body(doc)))
    folded_vocabulary: dict[str, set[str]] = {}
    for token in vocabulary:
        folded_vocabulary.setdefault(fold(token), set()).add(token)
    stemmed_vocabulary: dict[tuple[str, str], set[str]] = {}
    if de_term and en_term:
        for token in vocabulary:
            for key in (("de", de_term(token)), ("en", en_term(token))):
                if key[1]:
                    stemmed_vocabulary.setdefault(key, set()).add(token)

    # each query and mode: a list of clauses, each the set of surface tokens any of which satisfies it
    plans: dict[tuple[str, str], list[set[str]]] = {}
    for text in queries:
        words = TOKEN.findall(text)
        if de_term and en_term:
            clauses = []
            for word in words:
                de, en = de_term(word), en_term(word)
                if de or en:
                    clauses.append(stemmed_vocabulary.get(("de", de), set())
                                   | stemmed_vocabulary.get(("en", en), set()))
            plans[(text, "stemmed")] = clauses
        stops = getattr(ours, "_is_stop", None)
        plans[(text, "folded")] = [folded_vocabulary.get(fold(w), set()) for w in words
                                   if not (stops and stops(unicodedata.normalize("NFC", w).casefold()))]
    counts: dict[tuple[str, str], tuple[int, dict[str, Counter]]] = {
        key: (0, {"association": Counter(), "year": Counter(), "tag": Counter()}) for key in plans}
    totals = Counter()
    for doc in docs:
        if doc.status != "published":
            continue
        tokens = set(TOKEN.findall(_body(doc)))
        for key, clauses in plans.items():
            if clauses and all(not tokens.isdisjoint(clause) for clause in clauses):
                totals[key] += 1
                facets = counts[key][1]
                facets["association"][doc.association] += 1
                if doc.taken_at is not None:
                    facets["year"][str(doc.taken_at.year)] += 1
                facets["tag"].update(doc.tags)
    out: dict[str, dict[str, tuple[int, dict[str, Counter]]]] = {}
    for (text, mode), (_, facets) in counts.items():
        out.setdefault(text, {})[mode] = (totals[(text, mode)], facets)
    return out


def _facet_diff(ours: dict[str, dict[str, int]], expected: dict[str, Counter]) -> list[str]:
    problems = []
    for name in ("association", "year", "tag"):
        got = dict(ours.get(name, {}))
        want = {k: v for k, v in expected[name].items() if v}
        if got != want:
            keys = sorted(set(got) | set(want), key=lambda k: -abs(got.get(k, 0) - want.get(k, 0)))
            wrong = [k for k in keys if got.get(k, 0) != want.get(k, 0)]
            sample = ", ".join(f"{k}: {got.get(k, 0)} vs {want.get(k, 0)}" for k in wrong[:3])
            problems.append(f"{name} differs in {len(wrong)} values ({sample})")
    return problems


def check_invariants(label: str, docs_by_id: dict[int, Any], queries: list[str], results: list[Any],
                     published_only: bool) -> list[str]:
    problems = []
    for text, result in zip(queries, results, strict=True):
        ids = [hit.id for hit in result.hits]
        if published_only:
            hidden = [i for i in ids if docs_by_id[i].status != "published"]
            if hidden:
                problems.append(f"{label} {text!r}: unpublished photos among the hits: {hidden[:5]}")
        if len(ids) != min(TOP, result.total):
            problems.append(f"{label} {text!r}: {len(ids)} hits on page 1 for a total of {result.total}")
        if len(set(ids)) != len(ids):
            problems.append(f"{label} {text!r}: a photo appears twice on the page")
        associations = sum(result.facets.get("association", {}).values())
        if associations != result.total:
            problems.append(f"{label} {text!r}: association counts sum to {associations}, total {result.total}")
        years = sum(result.facets.get("year", {}).values())
        if years > result.total:
            problems.append(f"{label} {text!r}: year counts sum to {years} > total {result.total}")
        scores = [hit.score for hit in result.hits]
        if any(a < b for a, b in itertools.pairwise(scores)):
            problems.append(f"{label} {text!r}: hits not in descending score order")
    return problems


# --------------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", type=int, default=12, help="queries compared with a plain-Python count")
    parser.add_argument("--commit-every", type=int, default=1,
                        help="queries between two index commits in the after-commit pass (1: every query)")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        print(f"pinned to core {core}")
    if not Fts5.available():
        print("this Python's sqlite3 has no FTS5", file=sys.stderr)
        return 2
    module = ROOT / "archive" / "search.py"
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, archive/search.py "
          f"sha256 {hashlib.sha256(module.read_bytes()).hexdigest()[:12]}; {_load()}")

    start = time.perf_counter()
    corpus = generate(args.docs, args.seed)
    docs = corpus.docs
    queries = make_queries(args.queries, args.seed)
    published = sum(d.status == "published" for d in docs)
    print(f"generated {len(docs):,} records ({published / len(docs):.1%} published) and {len(queries)} queries "
          f"in {time.perf_counter() - start:.1f} s; e.g. {queries[:6]}")
    average_words = sum(len(d.caption.split()) for d in docs) / len(docs)
    print(f"captions: {average_words:.1f} words on average; e.g. {docs[0].caption!r}")

    from archive.search import FACETS, SearchIndex, SearchQuery, Viewer

    with tempfile.TemporaryDirectory(prefix="bench-search-") as folder:
        root = Path(folder)
        index = SearchIndex(root / "index")
        start = time.perf_counter()
        indexed = index.rebuild(docs, position=0)
        build = time.perf_counter() - start
        print(f"whoosh: rebuild of {indexed:,} records {build:.1f} s, {_size_mb(root / 'index'):.0f} MB on disk")
        start = time.perf_counter()
        index.search(SearchQuery(text="", per_page=TOP), Viewer())
        opening = time.perf_counter() - start
        print(f"whoosh: first search after the rebuild (opens the searcher, empty text) {opening * 1000:.0f} ms")

        anonymous, curator = Viewer(), Viewer(sees_everything=True)
        whoosh_cold, whoosh_anon, anon_results = run(
            "whoosh anonymous", lambda t: index.search(SearchQuery(text=t, per_page=TOP), anonymous), queries)
        curator_cold, whoosh_curator, curator_results = run(
            "whoosh curator", lambda t: index.search(SearchQuery(text=t, per_page=TOP), curator), queries)

        # last: the commits change a few captions, which the consistency checks below need not know about
        busy, first_after, commits = after_commits(index, docs, queries, args.commit_every, anonymous, args.seed)

        fts = Fts5(root / "fts.sqlite3")
        start = time.perf_counter()
        fts.build(docs)
        fts_build = time.perf_counter() - start
        print(f"fts5: build {fts_build:.1f} s, {(root / 'fts.sqlite3').stat().st_size / 1e6:.0f} MB on disk")
        fts_cold, fts_anon, fts_results = run("fts5 published-only", fts.search, queries)

        totals = sorted(r.total for r in anon_results)
        empty = sum(1 for r in anon_results if r.total == 0)
        fuzzy = sum(1 for r in anon_results if r.fuzzy)
        print(f"\nmatches per query (anonymous): median {_percentile(totals, 0.5):,}, "
              f"p95 {_percentile(totals, 0.95):,}, max {totals[-1]:,}; {empty} with no hits, "
              f"{fuzzy} answered by fuzzy matching")

        print(f"\n{'':40}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'mean ms':>9}")
        timings = [whoosh_cold, whoosh_anon, busy, curator_cold, whoosh_curator, fts_cold, fts_anon, commits]
        if args.commit_every > 1:
            timings.insert(3, first_after)
        for timing in timings:
            print(f"{timing.label:40}{timing.p(0.5):9.1f}{timing.p(0.95):9.1f}{max(timing.seconds) * 1000:9.1f}"
                  f"{timing.mean:9.1f}")
        slowest = sorted(zip(whoosh_anon.seconds, queries, anon_results, strict=True), key=lambda x: -x[0])[:5]
        print("slowest whoosh anonymous queries: " + "; ".join(
            f"{q!r} {s * 1000:.0f} ms ({r.total:,} hits{', fuzzy' if r.fuzzy else ''})" for s, q, r in slowest))
        print("(Whoosh counts all of FACETS: " + ", ".join(FACETS) + "; FTS5 counts association, year and tag only)")
        ratio = whoosh_anon.p(0.95) / fts_anon.p(0.95)
        print(f"\nratio whoosh_p95 / fts5_p95 (anonymous): {ratio:.2f}")
        scale = f" (scaled to 100 000: {build * 100_000 / len(docs):.1f} s)" if len(docs) != 100_000 else ""
        targets = [
            (f"whoosh anonymous p95 {whoosh_anon.p(0.95):.1f} ms <= {TARGET_P95_MS:.0f} ms",
             whoosh_anon.p(0.95) <= TARGET_P95_MS),
            (f"whoosh curator p95 {whoosh_curator.p(0.95):.1f} ms <= {TARGET_P95_MS:.0f} ms",
             whoosh_curator.p(0.95) <= TARGET_P95_MS),
            (f"whoosh anonymous cold pass p95 {whoosh_cold.p(0.95):.1f} ms <= {TARGET_P95_MS:.0f} ms",
             whoosh_cold.p(0.95) <= TARGET_P95_MS),
            (f"whoosh anonymous after commits p95 {first_after.p(0.95):.1f} ms <= {TARGET_P95_MS:.0f} ms",
             first_after.p(0.95) <= TARGET_P95_MS),
            (f"full rebuild {build:.1f} s{scale} <= {TARGET_BUILD_S:.0f} s for 100 000",
             build * 100_000 / len(docs) <= TARGET_BUILD_S),
        ]
        for text, met in targets:
            print(f"target {'met    ' if met else 'NOT MET'}  {text}")

        # consistency ------------------------------------------------------------------------------------------
        docs_by_id = {d.id: d for d in docs}
        problems = check_invariants("anonymous", docs_by_id, queries, anon_results, published_only=True)
        problems += check_invariants("curator", docs_by_id, queries, curator_results, published_only=False)
        for text, anon, cur in zip(queries, anon_results, curator_results, strict=True):
            if cur.total < anon.total:
                problems.append(f"{text!r}: curator finds {cur.total}, fewer than a visitor's {anon.total}")
        print(f"\ninvariants on all {len(queries)} queries (visibility, page size, facet sums, order): "
              + ("ok" if not problems else f"{len(problems)} problems"))
        for problem in problems[:20]:
            print("  " + problem)

        picked = _pick_checks(queries, args.check)
        start = time.perf_counter()
        reference = reference_counts(docs, picked)
        print(f"\nconsistency with a plain-Python count ({len(picked)} queries, published only, "
              f"{time.perf_counter() - start:.1f} s); totals: whoosh / stemmed reference / folded reference / fts5")
        mismatches = 0
        for text in picked:
            position = queries.index(text)
            ours, fts_result = anon_results[position], fts_results[position]
            stemmed = reference[text].get("stemmed")
            folded = reference[text]["folded"]
            stemmed_total = f"{stemmed[0]:,}" if stemmed else "n/a"
            line = (f"  {text!r:34} {ours.total:>7,} / {stemmed_total:>7} / {folded[0]:>7,} / "
                    f"{fts_result.total:>7,}{'  (fuzzy)' if ours.fuzzy else ''}")
            notes = []
            if stemmed is not None:
                if ours.total != stemmed[0]:
                    notes.append(f"total differs from the stemmed count by {ours.total - stemmed[0]:+,}")
                notes += [f"vs stemmed: {p}" for p in _facet_diff(ours.facets, stemmed[1])]
            if ours.total != folded[0]:
                notes.append(f"total differs from the folded (unstemmed) count by {ours.total - folded[0]:+,}")
            if ours.fuzzy:
                notes.append("(expected: nothing matched exactly, so Whoosh answered with similar spellings)")
            elif stemmed is not None and (ours.total != stemmed[0] or _facet_diff(ours.facets, stemmed[1])):
                mismatches += 1
            print(line)
            for note in notes:
                print("      " + note)
        print(f"queries whose Whoosh counts differ from the stemmed reference (fuzzy answers aside): "
              f"{mismatches} of {len(picked)}")
        fts_vs_whoosh = sum(1 for a, b in zip(anon_results, fts_results, strict=True) if a.total != b.total)
        print(f"queries whose total differs between Whoosh and FTS5 (porter is English-only, no ue->ü): "
              f"{fts_vs_whoosh} of {len(queries)}")
        fts.db.close()
    print(f"\npeak resident memory {_peak_rss_mb():.0f} MB; {_load()}")
    return 0


def _pick_checks(queries: list[str], count: int) -> list[str]:
    """A spread of the queries: one, two and three words, and the umlaut spellings."""
    unique = list(dict.fromkeys(queries))
    umlauts = [q for q in unique if not q.isascii() or re.search(r"ue|ae|oe|ss", q)]
    by_size = {n: [q for q in unique if len(q.split()) == n] for n in (1, 2, 3)}
    picked: list[str] = []
    sources = [umlauts, by_size[1], by_size[2], by_size[3]]
    while len(picked) < min(count, len(unique)) and any(sources):
        for source in sources:
            while source and source[0] in picked:
                source.pop(0)
            if source and len(picked) < count:
                picked.append(source.pop(0))
    return picked


if __name__ == "__main__":
    raise SystemExit(main())
