"""Search on a real Whoosh index in a temporary folder (no mocks): what people type, what they may see, facets,
snippets, and the index's own life (outbox writes, rebuild swaps, lost or damaged files, a busy writer)."""

from __future__ import annotations

import dataclasses
import os
import random
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from whoosh import index as whoosh_index
from whoosh.qparser import MultifieldParser
from whoosh.scoring import bm25

from archive import search as search_module
from archive.errors import ArchiveError
from archive.search import (
    FACETS,
    Hit,
    IndexBusy,
    SearchDoc,
    SearchIndex,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
    Viewer,
    parse_query,
)

ROOT = Path(__file__).resolve().parent.parent
VISITOR = Viewer()
CURATOR = Viewer(sees_everything=True)
PASADENA = Viewer(association="pasadena")
LORIENT = Viewer(association="lorient")


def photo(id: int, caption: str, *, status: str = "published", association: str = "pasadena",
          taken: datetime | None = datetime(2023, 6, 1), title: str = "", tags: tuple[str, ...] = (),
          photographer: str = "", place: str = "", licence: str = "CC BY 4.0") -> SearchDoc:
    cities = {"pasadena": "Pasadena", "lorient": "Lorient", "havering": "Havering", "lu": "Ludwigshafen am Rhein"}
    return SearchDoc(id=id, status=status, association=association, association_name=f"Freundeskreis {association}",
                     partner_city=cities[association], taken_at=taken,
                     created_at=datetime(2024, 1, 1) + timedelta(minutes=id), title=title or f"Foto {id}",
                     caption=caption, tags=tags, photographer=photographer, place=place, licence=licence)


DOCS = [
    photo(1, "Die Brücke über den Rhein", tags=("Rhein", "Architektur"), photographer="Anna Schmidt",
          place="Konrad-Adenauer-Brücke", taken=datetime(2023, 5, 1)),
    photo(2, "Konrad-Adenauer-Brücke bei Nacht", tags=("Nacht",), photographer="Anna Schmidt",
          place="Konrad-Adenauer-Brücke", taken=datetime(2021, 9, 12)),
    photo(3, "Old bridge over the Arroyo Seco", association="pasadena", photographer="John Miller",
          place="Colorado Street Bridge", licence="CC0", taken=datetime(2019, 3, 3)),
    photo(4, "Brücken im Hafen von Lorient", association="lorient", photographer="Marie Dubois",
          place="Pont du Bonhomme", licence="CC BY-SA 4.0", taken=datetime(2022, 7, 14)),
    photo(5, "Der Rhein bei Nacht, ohne Brücke", tags=("Nacht", "Rhein"), association="lu", taken=None),
    photo(6, "Konrad sah die Brücke, Adenauer nicht", association="havering", taken=datetime(2020, 1, 1)),
    photo(7, "Café am Ufer in Gaziantep: Şehir und Köprü", association="lorient", taken=datetime(2018, 8, 8)),
    photo(8, "Eine Brücke im Nebel", association="havering", photographer="Tom Jones", taken=None),
    # not published: nothing of these may reach a visitor
    photo(20, "Geheimtreffen unter der Rheinbrücke bei Nacht", status="submitted", association="pasadena",
          tags=("Geheimsache",), photographer="Verborgene Person", place="Geheimort", licence="CC0",
          taken=datetime(2015, 2, 2)),
    photo(21, "Die Brücke im Schnee", status="in_review", association="lorient", photographer="Marie Dubois",
          taken=datetime(2024, 12, 24)),
    photo(22, "Zurückgezogene Brücke", status="withdrawn", association="havering", taken=datetime(2016, 1, 1)),
]
BY_ID = {doc.id: doc for doc in DOCS}
SECRET_WORDS = ("geheim", "verborgen", "rheinbrücke", "schnee", "zurückgezogen")


def sees(viewer: Viewer, doc: SearchDoc) -> bool:
    return (viewer.sees_everything or doc.status == "published"
            or (viewer.association is not None and doc.association == viewer.association))


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    search_index = SearchIndex(tmp_path / "index", lock_timeout=0.3)
    assert search_index.rebuild(DOCS, position=7) == len(DOCS)
    return search_index


def find(index: SearchIndex, raw: str = "", viewer: Viewer = VISITOR, **filters: object) -> SearchResult:
    return index.search(parse_query(raw, per_page=100, **filters), viewer)


def ids(result: SearchResult) -> list[int]:
    return [hit.id for hit in result.hits]


def all_ids(index: SearchIndex, query: SearchQuery, viewer: Viewer) -> list[int]:
    found: list[int] = []
    page = 1
    while True:
        result = index.search(dataclasses.replace(query, page=page), viewer)
        found += ids(result)
        if page >= result.pages:
            return found
        page += 1


def expected_facets(docs: list[SearchDoc]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    for doc in docs:
        counts["association"][doc.association] += 1
        counts["partner_city"][doc.partner_city] += 1
        counts["place"].update([doc.place] if doc.place else [])
        counts["year"].update([str(doc.taken_at.year)] if doc.taken_at else [])
        counts["tag"].update(doc.tags)
        counts["photographer"].update([doc.photographer] if doc.photographer else [])
        counts["licence"].update([doc.licence] if doc.licence else [])
    return {name: dict(counter) for name, counter in counts.items()}


def current_dir(index: SearchIndex) -> Path:
    return index.index_dir / (index.index_dir / "CURRENT").read_text().strip()


# --------------------------------------------------------------------------------------------------------------------
# What people type


@pytest.mark.parametrize("typed", ["Brücke", "brücken", "Bruecke", "BRÜCKE", "bruecken", "Brucke"])
def test_every_spelling_of_bruecke_finds_the_bridge_over_the_rhine(index: SearchIndex, typed: str) -> None:
    result = find(index, typed)
    assert 1 in ids(result)
    assert {1, 2, 4, 5, 6, 8} == set(ids(result))  # every published caption with Brücke/Brücken, nothing else


def test_english_plural_finds_the_singular(index: SearchIndex) -> None:
    assert ids(find(index, "bridges")) == [3]
    assert ids(find(index, "BRIDGE")) == [3]


def test_every_word_is_required(index: SearchIndex) -> None:
    assert set(ids(find(index, "Rhein Brücke"))) == {1, 5}
    assert set(ids(find(index, "Rhein Nacht"))) == {5}  # 1 has Rhein but no Nacht, 2 the other way round


def test_a_quoted_hyphenated_name_is_a_phrase(index: SearchIndex) -> None:
    # 6 has all three words, but not together: the phrase does not match it
    assert set(ids(find(index, '"Konrad-Adenauer-Brücke"'))) == {1, 2}  # 1 through its place, 2 in its caption
    assert set(ids(find(index, "Konrad-Adenauer-Brücke"))) == {1, 2}  # unquoted, the hyphens make it a phrase too
    assert set(ids(find(index, "Konrad Adenauer Brücke"))) == {1, 2, 6}  # separate words: all three anywhere
    assert set(ids(find(index, '"Brücke über den Rhein"'))) == {1}
    assert set(ids(find(index, '"Rhein Brücke"'))) == set()


def test_a_minus_excludes(index: SearchIndex) -> None:
    assert set(ids(find(index, "Brücke -Nacht"))) == {1, 4, 6, 8}
    assert set(ids(find(index, 'Brücke -"im Nebel"'))) == {1, 2, 4, 5, 6}
    only_exclusion = find(index, "-Nacht")  # nothing required: everything visible except
    assert set(ids(only_exclusion)) == {1, 3, 4, 6, 7, 8}


def test_other_accents_are_folded(index: SearchIndex) -> None:
    assert ids(find(index, "cafe sehir")) == [7]
    assert ids(find(index, "CAFÉ köprü")) == [7]
    assert ids(find(index, "kopru")) == [7]


def test_a_query_without_hits_suggests_a_spelling_and_falls_back_to_similar_words(index: SearchIndex) -> None:
    result = find(index, "Brükce")
    assert result.suggestion == "Brücke"
    assert result.fuzzy is True
    assert {1, 5, 6, 8} <= set(ids(result))
    corrected = find(index, "Rhein Brüke verein:lu")
    assert corrected.suggestion == "Rhein Brücke verein:lu"  # the suggestion keeps what else was typed
    assert ids(corrected) == [5] and corrected.fuzzy
    exact = find(index, "Brücke")
    assert exact.suggestion is None and exact.fuzzy is False
    nothing = find(index, "Xylophon")
    assert (nothing.total, nothing.suggestion, nothing.fuzzy) == (0, None, False)


def test_fuzzy_hits_are_highlighted(index: SearchIndex) -> None:
    result = find(index, "Nebl")
    assert result.fuzzy and ids(result) == [8]
    assert result.hits[0].snippet == "Eine Brücke im <mark>Nebel</mark>"


# --------------------------------------------------------------------------------------------------------------------
# Query syntax


def test_query_syntax_pulls_filters_out_of_the_text_in_german_and_english() -> None:
    query = parse_query('Brücke verein:Pasadena ort:"Konrad-Adenauer-Brücke" jahr:2019..2023 tag:Nacht '
                        'by:"Anna Schmidt" lizenz:CC0 stadt:Lorient -Nebel "im Hafen"')
    assert query.text == 'Brücke -Nebel "im Hafen"'
    assert query.association == ("pasadena",)
    assert query.place == ("Konrad-Adenauer-Brücke",)
    assert query.years == (2019, 2023)
    assert query.tag == ("Nacht",)
    assert query.photographer == ("Anna Schmidt",)
    assert query.licence == ("CC0",)
    assert query.partner_city == ("Lorient",)
    english = parse_query("association:lorient place:Hafen year:2021 fotograf:Tom photographer:'x' city:Pasadena")
    assert english.association == ("lorient",) and english.place == ("Hafen",) and english.years == (2021, 2021)
    assert english.photographer == ("Tom", "'x'") and english.partner_city == ("Pasadena",)
    assert english.text == ""


@pytest.mark.parametrize(("typed", "years"), [
    ("jahr:2023", (2023, 2023)), ("year:2019..2023", (2019, 2023)), ("jahr:2023..2019", (2019, 2023)),
    ("jahr:2019-2021", (2019, 2021)), ("jahr:2019–2021", (2019, 2021)), ("jahr:2020..", (2020, 9999)),
    ("jahr:..2020", (0, 2020)), ("jahr:2019 jahr:2022", (2019, 2022)),
])
def test_years_and_year_ranges(typed: str, years: tuple[int, int]) -> None:
    query = parse_query(typed)
    assert query.years == years and query.text == ""


@pytest.mark.parametrize("typed", ["jahr:abc", "jahr:20", "year:2019...x", "http://example.org", "10:30",
                                   "Notiz:wichtig"])
def test_what_is_not_a_usable_filter_stays_in_the_text_as_typed(typed: str) -> None:
    query = parse_query(f"Brücke {typed}")
    assert query.text == f"Brücke {typed}"
    assert query.years is None and query.association == () and query.tag == ()


def test_filters_from_url_parameters_are_merged_in() -> None:
    query = parse_query("Brücke verein:pasadena jahr:2020", association=("lorient", "Pasadena"), tag="Nacht",
                        years=(2022, 2023), status=["Submitted"], sort="newest", page="3", per_page=500)
    assert query.association == ("pasadena", "lorient")
    assert query.tag == ("Nacht",)
    assert query.years == (2020, 2023)  # values of one filter are alternatives: one span
    assert query.status == ("submitted",)
    assert (query.sort, query.page, query.per_page) == ("newest", 3, 100)
    assert query.raw == "Brücke verein:pasadena jahr:2020"
    assert parse_query("", sort="nonsense", page="x").sort == "relevance"
    assert parse_query("", page="x").page == 1
    with pytest.raises(TypeError):
        parse_query("", colour="red")


def test_filters_combine_with_text_and_with_each_other(index: SearchIndex) -> None:
    assert set(ids(find(index, "Brücke verein:pasadena"))) == {1, 2}
    assert set(ids(find(index, "verein:pasadena verein:lorient"))) == {1, 2, 3, 4, 7}  # one filter: any value
    assert set(ids(find(index, "verein:pasadena jahr:2022..2023"))) == {1}  # different filters: all
    assert set(ids(find(index, 'by:"Anna Schmidt" tag:Nacht'))) == {2}
    assert set(ids(find(index, "ort:konrad-adenauer-bruecke"))) == {1, 2}  # case and umlauts do not matter
    assert set(ids(find(index, "fotograf:anna  schmidt"))) == set()  # unquoted: "schmidt" is a text word
    assert set(ids(find(index, "", place=("Pont du Bonhomme", "Colorado Street Bridge")))) == {3, 4}
    assert set(ids(find(index, "lizenz:cc0"))) == {3}
    assert set(ids(find(index, "stadt:lorient Brücken"))) == {4}
    assert set(ids(find(index, "jahr:2018..2019"))) == {3, 7}
    assert set(ids(find(index, "tag:rhein tag:nacht"))) == {1, 2, 5}
    assert find(index, "verein:niemand").total == 0


# --------------------------------------------------------------------------------------------------------------------
# Facets, order, pages, snippets


COUNTING = {"bitmasks": {}, "pair-scan": {"_MASKED_FACET_LIMIT": 0, "_SPARSE_RATIO": 10**9},
            "by-document": {"_MASKED_FACET_LIMIT": 0, "_SPARSE_RATIO": 0}}


@pytest.mark.parametrize("counting", list(COUNTING))
@pytest.mark.parametrize("viewer", [VISITOR, PASADENA, LORIENT, CURATOR])
@pytest.mark.parametrize("raw", ["", "Brücke", "Nacht", "verein:lorient", "Brücke jahr:2020..2024", "-Nacht"])
def test_facets_count_every_matching_visible_photo(index: SearchIndex, viewer: Viewer, raw: str, counting: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in COUNTING[counting].items():  # the three ways of counting (chosen by facet size) agree
        monkeypatch.setattr(search_module, name, value)
    result = index.search(parse_query(raw, per_page=2), viewer)
    every = all_ids(index, parse_query(raw, per_page=2), viewer)
    assert len(every) == len(set(every)) == result.total
    assert all(sees(viewer, BY_ID[i]) for i in every)
    assert result.facets == expected_facets([BY_ID[i] for i in every])  # over all hits, not just the page
    assert list(result.facets) == list(FACETS)


def test_facets_match_hits_computed_independently(index: SearchIndex) -> None:
    result = find(index, "", CURATOR, association=("pasadena", "havering"), years=(2015, 2022))
    expected = [d for d in DOCS if d.association in ("pasadena", "havering") and d.taken_at
                and 2015 <= d.taken_at.year <= 2022]
    assert set(ids(result)) == {d.id for d in expected}
    assert result.facets == expected_facets(expected)
    assert list(result.facets["year"]) == sorted(result.facets["year"], reverse=True)  # years newest first


def test_sort_newest_and_oldest_put_photos_without_a_date_last(index: SearchIndex) -> None:
    newest = ids(find(index, "", sort="newest"))
    oldest = ids(find(index, "", sort="oldest"))
    dated = sorted((d for d in DOCS if d.status == "published" and d.taken_at), key=lambda d: d.taken_at)
    undated = sorted(d.id for d in DOCS if d.status == "published" and not d.taken_at)
    assert newest == [d.id for d in reversed(dated)] + sorted(undated, reverse=True)
    assert oldest == [d.id for d in dated] + undated
    assert ids(find(index, "")) == newest  # no text: relevance has nothing to rank by, newest first
    assert ids(find(index, "Brücke", sort="oldest")) == [6, 2, 4, 1, 5, 8]


def test_relevance_puts_the_better_match_first(index: SearchIndex) -> None:
    result = find(index, "Rhein")
    assert result.hits[0].score >= result.hits[-1].score > 0
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_pages(index: SearchIndex) -> None:
    first = index.search(parse_query("Brücke", per_page=4), VISITOR)
    second = index.search(parse_query("Brücke", per_page=4, page=2), VISITOR)
    assert (first.total, first.pages, first.page, second.page) == (6, 2, 1, 2)
    assert len(first.hits) == 4 and len(second.hits) == 2
    assert set(ids(first)) | set(ids(second)) == {1, 2, 4, 5, 6, 8}
    beyond = index.search(parse_query("Brücke", per_page=4, page=9), VISITOR)
    assert beyond.page == 2 and ids(beyond) == ids(second)  # a page past the end shows the last one
    empty = find(index, "Xylophon")
    assert (empty.total, empty.pages, empty.page, empty.hits) == (0, 1, 1, [])


def test_snippets_are_escaped_html_with_marks_only_around_the_matches(tmp_path: Path) -> None:
    search_index = SearchIndex(tmp_path / "index")
    caption = 'Brücke <script>alert("x")</script> & <b>Rhein</b> bei Nacht'
    search_index.rebuild([photo(1, caption)], 0)
    hit = find(search_index, "brücken rhein").hits[0]
    assert hit.caption == caption
    assert hit.snippet == ("<mark>Brücke</mark> &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                           "&lt;b&gt;<mark>Rhein</mark>&lt;/b&gt; bei Nacht")
    assert re.sub(r"</?mark>", "", hit.snippet).count("<") == 0


def test_long_captions_give_a_window_around_the_first_match(tmp_path: Path) -> None:
    search_index = SearchIndex(tmp_path / "index")
    caption = " ".join(["Wasser"] * 80) + " die alte Brücke " + " ".join(["Ufer"] * 80)
    search_index.rebuild([photo(1, caption), photo(2, "")], 0)
    snippet = find(search_index, "Brücke").hits[0].snippet
    assert snippet.startswith("…") and snippet.endswith("…") and "<mark>Brücke</mark>" in snippet
    assert len(snippet) < 300
    untitled = find(search_index, "Foto", CURATOR).hits  # no caption: the title stands in
    assert [h.snippet for h in untitled if h.id == 2] == ["<mark>Foto</mark> 2"]


# --------------------------------------------------------------------------------------------------------------------
# Who sees what


def test_visitors_find_only_published_photos(index: SearchIndex) -> None:
    for raw in ["Brücke", "Geheimtreffen", "Schnee", "Rheinbrücke", "tag:Geheimsache", "ort:Geheimort",
                'by:"Verborgene Person"', "", "verein:pasadena", "status:submitted"]:
        result = find(index, raw)
        assert all(BY_ID[i].status == "published" for i in ids(result)), raw
    assert find(index, "Geheimtreffen").total == 0


@pytest.mark.parametrize("raw", ["Geheimtrefen", "Geheimtreffen", "Schne", "verborgene", "Rheinbrücke", "",
                                 "Nacht", "Brücke"])
def test_nothing_of_an_unpublished_photo_reaches_a_visitor(index: SearchIndex, raw: str) -> None:
    result = find(index, raw)
    text = repr(result).casefold()
    for word in (*SECRET_WORDS, "in_review", "submitted", "geheimort", "verborgene person"):
        assert word not in text, (raw, word)
    visible = [d for d in DOCS if d.status == "published"]
    assert set(result.facets["year"]) <= {str(d.taken_at.year) for d in visible if d.taken_at}
    for name in ("place", "photographer", "tag", "licence", "association"):
        assert set(result.facets[name]) <= set(expected_facets(visible)[name]), name
    assert result.suggestion is None or all(w not in result.suggestion.casefold() for w in SECRET_WORDS)


def test_suggestions_come_only_from_words_the_viewer_may_see(index: SearchIndex) -> None:
    assert find(index, "Geheimtrefen").suggestion is None  # the word exists, but only unpublished
    assert find(index, "Geheimtrefen", CURATOR).suggestion == "Geheimtreffen"
    assert find(index, "Geheimtrefen", PASADENA).suggestion == "Geheimtreffen"  # the owners' own photo
    assert find(index, "Geheimtrefen", LORIENT).suggestion is None
    assert ids(find(index, "Geheimtrefen", PASADENA)) == [20]


def test_members_find_their_own_unpublished_photos(index: SearchIndex) -> None:
    assert set(ids(find(index, "Brücke", PASADENA))) == {1, 2, 4, 5, 6, 8}  # 20 has Rheinbrücke, not Brücke
    assert set(ids(find(index, "Nacht", PASADENA))) == {2, 5, 20}
    assert set(ids(find(index, "Nacht", LORIENT))) == {2, 5}
    assert set(ids(find(index, "Brücke", LORIENT))) == {1, 2, 4, 5, 6, 8, 21}
    assert find(index, "Nacht", PASADENA).facets["tag"] == {"Nacht": 2, "Rhein": 1, "Geheimsache": 1}
    assert find(index, "Nacht").facets["tag"] == {"Nacht": 2, "Rhein": 1}


def test_curators_find_everything_and_may_filter_by_status(index: SearchIndex) -> None:
    assert set(ids(find(index, "Brücke", CURATOR))) == {1, 2, 4, 5, 6, 8, 21, 22}
    assert set(ids(find(index, "", CURATOR, status=("submitted", "in_review")))) == {20, 21}
    assert set(ids(find(index, "status:withdrawn", CURATOR))) == {22}
    published = {d.id for d in DOCS if d.status == "published"}
    assert set(ids(find(index, "", PASADENA, status=("submitted",)))) == published | {20}  # ignored for members
    assert find(index, "", VISITOR, status=("submitted",)).total == 8  # and for visitors


# --------------------------------------------------------------------------------------------------------------------
# The index's life


def test_create_apply_upsert_delete_and_position(tmp_path: Path) -> None:
    search_index = SearchIndex(tmp_path / "index")
    assert not search_index.exists()
    search_index.create()
    search_index.create()  # idempotent
    assert search_index.exists() and search_index.position() == 0
    assert find(search_index, "").total == 0
    search_index.apply([(1, photo(1, "Die Brücke über den Rhein")), (2, photo(2, "Nebel am Fluss"))], position=10)
    assert search_index.position() == 10
    assert set(ids(find(search_index, "Brücke"))) == {1}
    search_index.apply([(1, photo(1, "Der Steg im Schnee")), (3, photo(3, "Eine Brücke"))], position=11)
    assert ids(find(search_index, "Steg")) == [1]
    assert set(ids(find(search_index, "Brücke"))) == {3}  # the old caption of 1 is gone
    assert sorted(ids(find(search_index, ""))) == [1, 2, 3]  # each photo once
    search_index.apply([(2, None), (3, photo(3, "zuerst")), (3, photo(3, "zuletzt"))], position=12)
    assert sorted(ids(find(search_index, ""))) == [1, 3]
    assert ids(find(search_index, "zuletzt")) == [3] and find(search_index, "zuerst").total == 0
    assert search_index.position() == 12
    search_index.apply([(99, None)], position=13)  # deleting what is not there is harmless
    assert search_index.position() == 13
    search_index.create()
    assert search_index.position() == 13  # create() never wipes an existing index


def test_many_small_commits_stay_consistent(tmp_path: Path) -> None:
    search_index = SearchIndex(tmp_path / "index")
    search_index.create()
    for n in range(1, 25):
        search_index.apply([(n, photo(n, f"Brücke Nummer {n}")), (n - 1, photo(n - 1, f"Steg {n - 1}"))], n)
        assert ids(find(search_index, "Brücke")) == [n]
        assert find(search_index, "Steg").total == n  # 0 .. n-1, each once
    assert search_index.position() == 24
    assert set(search_index.stamps()) == set(range(25))


def test_stamps_cover_every_field(index: SearchIndex) -> None:
    assert index.stamps() == {doc.id: doc.stamp() for doc in DOCS}
    doc = DOCS[0]
    changed = {"status": "withdrawn", "association": "x", "association_name": "y", "partner_city": "z",
               "taken_at": None, "created_at": datetime(2000, 1, 1), "title": "t", "caption": "c",
               "tags": ("a",), "photographer": "p", "place": "o", "licence": "l"}
    assert set(changed) == {f.name for f in dataclasses.fields(SearchDoc)} - {"id"}
    stamps = {dataclasses.replace(doc, **{name: value}).stamp() for name, value in changed.items()}
    assert len(stamps) == len(changed) and doc.stamp() not in stamps
    assert len(doc.stamp()) == 16 and doc.stamp() == dataclasses.replace(doc).stamp()
    index.apply([(1, None), (2, dataclasses.replace(DOCS[1], caption="neu"))], position=8)
    stamps_now = index.stamps()
    assert 1 not in stamps_now and stamps_now[2] == dataclasses.replace(DOCS[1], caption="neu").stamp()


def test_rebuild_swaps_atomically_while_searchers_keep_working(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    web, other = SearchIndex(folder), SearchIndex(folder)
    web.rebuild([photo(1, "Alte Brücke")], position=5)
    assert ids(find(web, "Brücke")) == [1]  # web now holds an open searcher
    seen_during: list[list[int]] = []

    def slowly() -> Iterator[SearchDoc]:
        yield photo(2, "Neue Brücke")
        seen_during.append(ids(find(web, "Brücke")))  # mid-rebuild, from another reader
        yield photo(3, "Noch eine Brücke")

    assert other.rebuild(slowly(), position=9) == 2
    assert seen_during == [[1]]  # readers answered from the old index until the swap
    assert sorted(ids(find(web, "Brücke"))) == [2, 3]  # and see the new one right after
    assert web.position() == 9
    other.rebuild([photo(4, "Dritte Brücke")], position=10)
    other.rebuild([photo(5, "Vierte Brücke")], position=11)
    assert ids(find(web, "Brücke")) == [5]
    generations = sorted(p.name for p in folder.iterdir() if p.name.startswith("gen-"))
    assert len(generations) == 2  # the live one and the previous one (for readers still open on it)
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_a_failed_rebuild_leaves_the_old_index_in_place(index: SearchIndex) -> None:
    def broken() -> Iterator[SearchDoc]:
        yield photo(30, "halb")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        index.rebuild(broken(), position=99)
    assert index.position() == 7 and find(index, "halb").total == 0 and find(index, "Brücke").total == 6
    assert not [p for p in index.index_dir.iterdir() if p.name.startswith(".tmp-")]


def test_a_missing_index_is_unavailable(tmp_path: Path) -> None:
    search_index = SearchIndex(tmp_path / "nowhere")
    assert not search_index.exists()
    for action in (lambda: find(search_index, "Brücke"), search_index.position, search_index.stamps,
                   lambda: search_index.apply([(1, photo(1, "x"))], 1)):
        with pytest.raises(SearchUnavailable):
            action()
    assert issubclass(SearchUnavailable, ArchiveError) and issubclass(IndexBusy, ArchiveError)


def test_a_deleted_index_folder_becomes_unavailable_for_a_running_searcher(index: SearchIndex) -> None:
    assert find(index, "Brücke").total == 6
    for child in index.index_dir.iterdir():
        if child.is_dir():
            for file in child.iterdir():
                file.unlink()
            child.rmdir()
    with pytest.raises(SearchUnavailable):
        find(index, "Brücke")
    index.rebuild(DOCS, 1)  # `brucken reindex` brings it back
    assert find(index, "Brücke").total == 6


@pytest.mark.parametrize("damage", ["garble", "truncate"])
def test_a_corrupt_index_is_unavailable_and_a_rebuild_repairs_it(index: SearchIndex, damage: str) -> None:
    segment = next(current_dir(index).glob("*.seg"))
    data = segment.read_bytes()
    if damage == "garble":
        rng = random.Random(1)
        segment.write_bytes(data[:16] + bytes(rng.randrange(256) for _ in range(len(data) - 16)))
    else:
        segment.write_bytes(data[: len(data) // 3])
    fresh = SearchIndex(index.index_dir)  # as a web process starting after the damage
    with pytest.raises(SearchUnavailable):
        find(fresh, "Brücke")
    with pytest.raises(SearchUnavailable):
        fresh.stamps()
    fresh.rebuild(DOCS, 7)
    assert find(fresh, "Brücke").total == 6


def test_a_busy_writer_raises_index_busy(index: SearchIndex) -> None:
    writer = whoosh_index.open_dir(str(current_dir(index))).writer()
    try:
        with pytest.raises(IndexBusy):
            index.apply([(1, None)], position=8)
        assert find(index, "Brücke").total == 6  # readers are not blocked by a writer
    finally:
        writer.cancel()
    index.apply([(1, None)], position=8)
    assert index.position() == 8 and 1 not in ids(find(index, "Brücke"))


def test_a_writer_in_another_process_raises_index_busy(index: SearchIndex) -> None:
    script = ("import sys\nfrom whoosh import index\nw = index.open_dir(sys.argv[1]).writer()\n"
              "print('locked', flush=True)\nsys.stdin.readline()\nw.cancel()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, "-c", script, str(current_dir(index))], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(IndexBusy):
                index.apply([(1, None)], position=8)
        finally:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
    assert holder.returncode == 0
    index.apply([(1, None)], position=8)
    assert index.position() == 8


def test_searches_from_several_threads(index: SearchIndex) -> None:
    errors: list[BaseException] = []
    totals: list[int] = []

    def work() -> None:
        try:
            for raw in ["Brücke", "Nacht", "verein:lorient", "Brükce"] * 5:
                totals.append(find(index, raw).total)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    index.apply([(40, photo(40, "Eine neue Brücke"))], position=8)
    for thread in threads:
        thread.join()
    assert not errors and len(totals) == 80


# --------------------------------------------------------------------------------------------------------------------
# The fast path agrees with Whoosh's own search


VOCABULARY = ["Brücke", "Brücken", "Rhein", "Neckar", "Nacht", "Nebel", "Fluss", "Ufer", "Licht", "Boot", "Steg",
              "Pfeiler", "Bogen", "Stahl", "Hafen", "Winter", "bridge", "bridges", "river", "night", "fog", "boat",
              "pier", "steel", "harbour", "die", "der", "über", "den", "und", "im", "the", "over", "at", "of"]


@pytest.mark.parametrize("counting", list(COUNTING))
def test_hits_order_scores_and_counts_equal_whoosh_own_search(tmp_path: Path, counting: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in COUNTING[counting].items():
        monkeypatch.setattr(search_module, name, value)
    monkeypatch.setattr(search_module, "_SEGMENT_DOCS", 70)  # a rebuild writes several segments, as at scale
    rng = random.Random(2024)
    docs = [photo(i, " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 14))),
                  status=rng.choice(["published", "published", "submitted"]),
                  association=rng.choice(["pasadena", "lorient", "havering"]), tags=tuple(rng.sample(
                      ["Nacht", "Rhein", "Stahl", "Winter"], rng.randint(0, 2))))
            for i in range(1, 301)]
    search_index = SearchIndex(tmp_path / "index")
    search_index.rebuild(docs[:200], position=1)
    # a second and third segment, and deletions and updates in the first, like the outbox worker makes them
    search_index.apply([(d.id, d) for d in docs[200:260]], position=2)
    search_index.apply([(d.id, d) for d in docs[260:]] + [(i, None) for i in range(1, 30, 3)]
                       + [(i, dataclasses.replace(docs[i - 1], caption="Brücke im Nebel")) for i in range(40, 60, 4)],
                       position=3)
    current = {d.id: d for d in docs if not (d.id < 30 and d.id % 3 == 1)}
    for i in range(40, 60, 4):
        current[i] = dataclasses.replace(docs[i - 1], caption="Brücke im Nebel")
    searcher = whoosh_index.open_dir(str(current_dir(search_index))).searcher()
    assert len(list(searcher.reader().leaf_readers())) >= 4  # several segments, some with deletions
    parser = MultifieldParser(["de", "en"], searcher.schema)
    sid = {docnum: fields["sid"] for docnum, fields in searcher.reader().iter_docs() if "sid" in fields}
    for text in ["Brücke", "Rhein Nacht", "bridges", "Nebel", "Stahl Bogen", "river", "Brücken Fluss", "Steg"]:
        for viewer in (VISITOR, PASADENA, CURATOR):
            allowed = {n for n, i in sid.items() if sees(viewer, current[i])}
            expected = searcher.search(parser.parse(text), limit=None, filter=allowed)
            # Whoosh breaks score ties by document number; ours breaks them newest taken first (stable sorts)
            whoosh_hits = sorted(sorted(((sid[hit.docnum], hit.score) for hit in expected),
                                        key=lambda hit: search_module._sort_keys(current[hit[0]])[0]),
                                 key=lambda hit: hit[1], reverse=True)
            ours = index_hits(search_index, SearchQuery(text=text, per_page=100), viewer)
            assert [i for i, _ in ours] == [i for i, _ in whoosh_hits], (text, viewer)
            assert all(abs(a[1] - b[1]) < 1e-9 for a, b in zip(ours, whoosh_hits, strict=True))
            result = search_index.search(SearchQuery(text=text, per_page=5), viewer)
            assert result.total == len(whoosh_hits)
            assert result.facets == expected_facets([current[i] for i, _ in whoosh_hits])
    searcher.close()


def index_hits(search_index: SearchIndex, query: SearchQuery, viewer: Viewer) -> list[tuple[int, float]]:
    hits: list[Hit] = []
    page = 1
    while True:
        result = search_index.search(dataclasses.replace(query, page=page), viewer)
        hits += result.hits
        if page >= result.pages:
            return [(hit.id, hit.score) for hit in hits]
        page += 1


def test_both_ways_of_ranking_give_whoosh_bm25_per_document_exactly(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores come from classes of documents (each term's weight, each field's length) scored once per generation,
    or, for a few matched documents, from each one's postings; a single clause with many matches walks its classes
    best first, other queries score each matched document. All must give exactly the float of Whoosh's own bm25()
    with Whoosh's statistics for every document (terms and clauses added in order), and the same order (score,
    then newest taken first), in every segment, with deletions, for words and phrases, for all matched documents
    and for a few."""
    monkeypatch.setattr(search_module, "_SEGMENT_DOCS", 70)
    monkeypatch.setattr(search_module, "_LOOKUP_RATIO", 0)  # one by one, unless a segment was classified already
    rng = random.Random(99)
    docs = [photo(i, " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 14)))) for i in range(1, 301)]
    search_index = SearchIndex(tmp_path / "index")
    search_index.rebuild(docs[:250], position=1)
    search_index.apply([(d.id, d) for d in docs[250:]] + [(i, None) for i in range(3, 90, 5)], position=2)
    with search_index._reading() as generation:
        searcher = generation.searcher
        newest = generation.keys("knew")

        def whoosh_score(clause: search_module._Clause, docnum: int) -> float:
            total = None
            for fieldname, text in clause.alternatives or [("de", term) for term in clause.phrase]:
                if not searcher.doc_frequency(fieldname, text):
                    continue
                matcher = searcher.postings(fieldname, text)
                matcher.skip_to(docnum)
                if matcher.is_active() and matcher.id() == docnum:
                    value = bm25(searcher.idf(fieldname, text), matcher.weight(),
                                 searcher.doc_field_length(docnum, fieldname), searcher.avg_field_length(fieldname),
                                 0.75, 1.2)
                    total = value if total is None else total + value
            assert total is not None
            return total

        for text in ["Brücke", "Rhein Nacht", "bridges fog", '"Brücke über den Rhein"', "Stahl Bogen Hafen"]:
            positive, _ = search_module._clauses(text)
            matched = generation.text(positive, []) & generation.visible(VISITOR, ())
            everything = [n for n in range(generation.size) if matched >> n & 1]
            for subset in (everything, everything[::9]):
                flags = search_module._flags(sum(1 << n for n in subset), generation.size)
                per_clause = [[whoosh_score(clause, n) for n in subset] for clause in positive]
                for clause, expected in zip(positive, per_clause, strict=True):
                    scored = generation.scored(clause)
                    assert scored is not None
                    classified = any(scored.terms in segment.classes for segment, _ in generation.leaves)
                    assert classified == (subset is not everything)  # the first time: no classes yet
                    assert scored.matched(flags, subset) == expected, (text, len(subset))  # one by one
                    best = sorted(zip(subset, expected, strict=True), key=lambda hit: (-hit[1], newest[hit[0]]))
                    assert scored.best(flags, len(subset), newest) == best, (text, len(subset))  # classifies
                    assert scored.best(flags, 3, newest) == best[:3]
                    assert scored.matched(flags, subset) == expected, (text, len(subset))  # by classes
                sums = [sum(values[1:], values[0]) for values in zip(*per_clause, strict=True)]
                best = sorted(zip(subset, sums, strict=True), key=lambda hit: (-hit[1], newest[hit[0]]))
                assert generation.rank(subset, flags, positive, len(subset)) == best, text
                assert generation.rank(subset, flags, positive, 4) == best[:4], text


@pytest.mark.parametrize("counting", list(COUNTING))
def test_what_is_kept_across_commits_answers_as_a_fresh_reader(tmp_path: Path, counting: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A searching process keeps each segment's reader and all derived from it (postings, bitmasks, classes,
    facet pairs) across commits, and only rescores. After updates, deletions and Whoosh's merges of small segments
    it must answer exactly as a process opening the index afresh: hits, order, scores, totals, facets, suggestions."""
    for name, value in COUNTING[counting].items():
        monkeypatch.setattr(search_module, name, value)
    monkeypatch.setattr(search_module, "_SEGMENT_DOCS", 60)
    rng = random.Random(7)
    docs = [photo(i, " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 14))),
                  status=rng.choice(["published", "published", "submitted"]),
                  association=rng.choice(["pasadena", "lorient", "havering"]),
                  tags=tuple(rng.sample(["Nacht", "Rhein", "Stahl", "Winter"], rng.randint(0, 2))),
                  photographer=rng.choice(["Anna Schmidt", "John Miller", ""]), taken=datetime(2015 + i % 9, 5, 1))
            for i in range(1, 401)]
    folder = tmp_path / "index"
    kept = SearchIndex(folder)
    kept.rebuild(docs[:300], position=1)
    raws = ["Brücke", "Rhein Nacht", "bridges", '"Brücke über den Rhein"', "Nebel -Fluss", "Stahl Bogen Hafen",
            "Brükce", "tag:Rhein Brücke", "by:\"John Miller\" river", "", "verein:lorient Nacht"]

    def answers(index: SearchIndex) -> list[SearchResult]:
        return [index.search(parse_query(raw, per_page=per_page, page=page, sort=sort), viewer)
                for raw in raws for viewer in (VISITOR, PASADENA, CURATOR)
                for per_page, page, sort in ((7, 1, "relevance"), (7, 3, "relevance"), (100, 1, "relevance"),
                                             (5, 2, "newest"))]

    answers(kept)  # every cache warm before the first commit
    steps: list[list[tuple[int, SearchDoc | None]]] = [
        [(5, dataclasses.replace(docs[4], caption="Brücke über den Rhein im Nebel"))],  # an update in segment 1
        [(i, None) for i in range(10, 200, 13)],  # deletions all over
        [(d.id, d) for d in docs[300:340]],  # new photos: a new segment
        *[[(d.id, dataclasses.replace(d, caption=d.caption + " Brücke"))] for d in docs[340:346]],  # merges
        [(i, dataclasses.replace(docs[i - 1], status="published", tags=("Rhein",))) for i in range(100, 130, 2)],
    ]
    reused = 0
    for position, changes in enumerate(steps, start=2):
        before = dict(kept._segments)
        kept.apply(changes, position=position)
        assert answers(kept) == answers(SearchIndex(folder)), position
        assert kept.position() == position
        survivors = [segid for segid in before if segid in kept._segments]  # not merged away by Whoosh
        assert all(kept._segments[segid] is before[segid] for segid in survivors)
        reused += len(survivors)
    assert reused >= 3 * len(steps)
