"""Jury rounds: a fixed pool of photos, a few jurors, one vote per juror and photo, closed by count or cutoff.

The pool is made once, when the round is created (from a shortlist, a search, chosen photos or a closed round's
selection) and never changes afterwards: only published or in-review photos enter it. A juror judges every photo
of the pool except those of their own association (conflict of interest). Votes are yes/no (stored 1/0) or 1–5
stars and can be changed until the round closes; after the deadline nobody votes any more, but the organiser can
still close the round, also when votes are missing.

Scores: yes/no -> the share of yes among the votes cast; stars -> the mean of the votes cast. A photo without votes
has no score and is ranked last. The ranking breaks ties by the number of votes (more first), then by the photo id
(lower first), so the order is always the same.

Closing:
- by count ("keep the best N"): the first N of the ranking. When the N-th and the (N+1)-th photo have the same score,
  the tie is broken by the ranking's order (more votes, then the lower photo id) and the organiser is told how many
  photos were tied at the boundary; exactly N are kept, so an exhibition wall with N places is never overfilled.
- by cutoff: every photo whose score, as it is shown to the organiser (yes/no: whole per cent; stars: two decimals),
  is at least the value (yes/no: a share between 0 and 1; stars: 1 to 5). So "67 % Ja" on the page passes a cutoff
  of 67 %, although two thirds are a little less.
Photos without any vote are never selected: nobody judged them.

Functions take the database session (and, for a search pool, the search index) as arguments and commit.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import audit
from .errors import Refusal
from .models import (
    Exhibition,
    Juror,
    JuryMode,
    JuryPhoto,
    JuryRound,
    Photo,
    PhotoStatus,
    Role,
    Shortlist,
    User,
    Vote,
    utcnow,
)
from .spreadsheets import spreadsheet_safe

if TYPE_CHECKING:
    from .search import SearchIndex

POOL_STATUSES = (PhotoStatus.PUBLISHED, PhotoStatus.IN_REVIEW)
JUROR_ROLES = (Role.CURATOR, Role.ADMIN)
MAX_POOL = 1000  # more than any exhibition needs; a guard against "every photo of the archive" by mistake
SEARCH_PAGE = 100
VALUES = {JuryMode.YES_NO: (0, 1), JuryMode.STARS: (1, 2, 3, 4, 5)}
MODE_LABELS = {JuryMode.YES_NO: ("Ja/Nein", "yes/no"), JuryMode.STARS: ("1–5 Sterne", "1–5 stars")}
RULES = ("count", "cutoff")
EPSILON = 1e-9


# --------------------------------------------------------------------------------------------------------------------
# Making a round


@dataclass(frozen=True)
class Pool:
    """Candidate photo ids in their order, and how they were found (in words, for people)."""

    photo_ids: list[int]
    source: str


def pool_from_photos(photo_ids: Iterable[int]) -> Pool:
    ids = list(dict.fromkeys(photo_ids))
    return Pool(ids, f"ausgewählte Fotos (Nr. {', '.join(str(i) for i in ids[:20])}{' …' if len(ids) > 20 else ''})")


def pool_from_shortlist(session: Session, shortlist_id: int) -> Pool:
    shortlist = session.get(Shortlist, shortlist_id)
    if shortlist is None:
        raise Refusal("shortlist_missing", "Diese Auswahlliste gibt es nicht (mehr). Bitte wählen Sie eine andere.",
                      "This shortlist does not exist (any more). Please choose another one.", status=422)
    return Pool([photo.id for photo in shortlist.photos], f"Auswahlliste „{shortlist.name}“")


def pool_from_round(session: Session, round_id: int) -> Pool:
    """The photos a closed round selected, in that round's pool order."""
    previous = session.get(JuryRound, round_id)
    if previous is None:
        raise Refusal("round_missing", "Diese Jury-Runde gibt es nicht.", "This jury round does not exist.",
                      status=422)
    if previous.closed_at is None:
        raise Refusal("round_still_open",
                      f"Die Runde „{previous.name}“ ist noch nicht abgeschlossen; erst ihr Ergebnis kann der "
                      "Bestand einer neuen Runde sein.",
                      f"The round '{previous.name}' is not closed yet; only its result can be the pool of a new "
                      "round.", status=422)
    return Pool([jp.photo_id for jp in previous.photos if jp.selected],
                f"Ergebnis der Runde „{previous.name}“")


def pool_from_search(index: SearchIndex, text: str) -> Pool:
    """Every hit of a search as a curator sees it, page by page, in the search's order."""
    from .search import SearchUnavailable, Viewer, parse_query

    text = text.strip()
    if not text:
        raise Refusal("search_empty", "Bitte geben Sie einen Suchbegriff ein (zum Beispiel: verein:pasadena).",
                      "Please enter a search (for example: association:pasadena).", status=422)
    ids: list[int] = []
    page = 1
    try:
        while True:
            result = index.search(parse_query(text, page=page, per_page=SEARCH_PAGE), Viewer(sees_everything=True))
            ids.extend(hit.id for hit in result.hits)
            if page >= result.pages or len(ids) > MAX_POOL:
                break
            page += 1
    except SearchUnavailable as error:
        raise Refusal("search_unavailable",
                      "Die Suche ist gerade nicht verfügbar. Bitte wählen Sie eine Auswahlliste oder versuchen Sie "
                      "es gleich noch einmal.",
                      "Search is not available right now. Please choose a shortlist or try again shortly.",
                      status=503) from error
    return Pool(ids, f"Suche „{text}“")


def _jurors(session: Session, juror_ids: Iterable[int]) -> list[User]:
    ids = list(dict.fromkeys(juror_ids))
    if not ids:
        raise Refusal("jurors_missing", "Bitte wählen Sie mindestens eine Jurorin oder einen Juror.",
                      "Please choose at least one juror.", status=422)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    for user_id in ids:
        user = users.get(user_id)
        if user is None or not user.active or user.role not in JUROR_ROLES:
            name = user.username if user is not None else f"Nr. {user_id}"
            raise Refusal("juror_not_allowed",
                          f"„{name}“ kann nicht in der Jury sein: Jurorinnen und Juroren sind Kurator:innen oder "
                          "Admins mit gültigem Konto.",
                          f"'{name}' cannot be a juror: jurors are curators or admins with an active account.",
                          status=422)
    return [users[i] for i in ids]


def create_round(session: Session, actor: User, *, name: str, mode: JuryMode | str, blind: bool,
                 deadline: datetime | None, juror_ids: Iterable[int], pool: Pool,
                 exhibition_id: int | None = None) -> JuryRound:
    """A new round with its pool fixed now. ``deadline`` is UTC without time zone, as the database keeps it."""
    name = name.strip()
    if not name:
        raise Refusal("name_missing", "Bitte geben Sie der Runde einen Namen (zum Beispiel „Brunch 2026, 1. Runde“).",
                      "Please give the round a name (for example 'Brunch 2026, round 1').", status=422)
    if len(name) > 200:
        raise Refusal("name_too_long", "Der Name ist zu lang (höchstens 200 Zeichen).",
                      "The name is too long (at most 200 characters).", status=422)
    try:
        mode = JuryMode(mode)
    except ValueError:
        raise Refusal("mode_unknown", "Bitte wählen Sie, wie abgestimmt wird: Ja/Nein oder 1–5 Sterne.",
                      "Please choose how to vote: yes/no or 1–5 stars.", status=422) from None
    if deadline is None:
        raise Refusal("deadline_missing", "Bitte geben Sie an, bis wann die Jury abstimmen kann.",
                      "Please say until when the jury can vote.", status=422)
    if deadline <= utcnow():
        raise Refusal("deadline_past",
                      "Die Frist liegt in der Vergangenheit. Bitte wählen Sie einen späteren Zeitpunkt.",
                      "The deadline is in the past. Please choose a later time.", status=422)
    if exhibition_id is not None and session.get(Exhibition, exhibition_id) is None:
        raise Refusal("exhibition_missing", "Diese Ausstellung gibt es nicht (mehr).",
                      "This exhibition does not exist (any more).", status=422)
    jurors = _jurors(session, juror_ids)
    if len(pool.photo_ids) > MAX_POOL:
        raise Refusal("pool_too_large",
                      f"Das sind mehr als {MAX_POOL} Fotos. Bitte grenzen Sie die Auswahl ein "
                      "(zum Beispiel mit einer Auswahlliste).",
                      f"That is more than {MAX_POOL} photos. Please narrow the selection (for example with a "
                      "shortlist).", status=422)
    eligible = _eligible(session, pool.photo_ids)
    if not eligible:
        raise Refusal("pool_empty",
                      "Für diese Runde gibt es keine Fotos: nur veröffentlichte Fotos oder Fotos in Prüfung kommen "
                      "in eine Jury-Runde.",
                      "There are no photos for this round: only published or in-review photos enter a jury round.",
                      status=422)
    left_out = len(pool.photo_ids) - len(eligible)
    source = f"{pool.source}: {len(eligible)} Foto{'' if len(eligible) == 1 else 's'}"
    if left_out:
        source += f", {left_out} weitere nicht veröffentlicht oder in Prüfung und deshalb nicht dabei"
    jury_round = JuryRound(name=name, exhibition_id=exhibition_id, mode=mode, blind=bool(blind), deadline=deadline,
                           pool_source=source[:300], created_by_id=actor.id)
    jury_round.photos = [JuryPhoto(photo_id=photo_id, position=n) for n, photo_id in enumerate(eligible, start=1)]
    jury_round.jurors = [Juror(user_id=user.id) for user in jurors]
    session.add(jury_round)
    session.flush()
    audit.record(session, "jury.created", actor=actor, subject="jury_round", subject_id=jury_round.id,
                 name=name, mode=mode, blind=bool(blind), deadline=deadline, photos=len(eligible),
                 jurors=[user.username for user in jurors], pool=source)
    session.commit()
    return jury_round


def _eligible(session: Session, photo_ids: Sequence[int]) -> list[int]:
    """The ids (in the given order) of photos that exist and are published or in review."""
    if not photo_ids:
        return []
    found = set(session.scalars(select(Photo.id).where(Photo.id.in_(list(photo_ids)),
                                                         Photo.status.in_(POOL_STATUSES))))
    return [photo_id for photo_id in photo_ids if photo_id in found]


# --------------------------------------------------------------------------------------------------------------------
# Who is who in a round


def is_juror(jury_round: JuryRound, user: Any) -> bool:
    user_id = getattr(user, "id", None)
    return any(juror.user_id == user_id for juror in jury_round.jurors)


def conflicted(user: Any, photo: Photo) -> bool:
    """A juror never judges their own association's photos."""
    association_id = getattr(user, "association_id", None)
    return association_id is not None and association_id == photo.association_id


def may_see_results(jury_round: JuryRound, user: Any) -> bool:
    """Scores, everybody's votes and the CSV: staff, but not the round's own jurors while it is open (a juror sees
    only their own votes)."""
    if not (getattr(user, "is_authenticated", False) and user.sees_everything):
        return False
    return jury_round.closed_at is not None or not is_juror(jury_round, user)


def may_close(jury_round: JuryRound, user: Any) -> bool:
    """The organiser (who made the round) or any curator or admin who is not one of its jurors."""
    if not (getattr(user, "is_authenticated", False) and user.sees_everything):
        return False
    return user.id == jury_round.created_by_id or not is_juror(jury_round, user)


def deadline_passed(jury_round: JuryRound, now: datetime | None = None) -> bool:
    return jury_round.deadline is not None and (now or utcnow()) >= jury_round.deadline


def voting_open(jury_round: JuryRound, now: datetime | None = None) -> bool:
    return jury_round.closed_at is None and not deadline_passed(jury_round, now)


def load_round(session: Session, round_id: int) -> JuryRound | None:
    return session.scalar(select(JuryRound).where(JuryRound.id == round_id).options(
        selectinload(JuryRound.photos).selectinload(JuryPhoto.photo).selectinload(Photo.derivatives),
        selectinload(JuryRound.photos).selectinload(JuryPhoto.photo).selectinload(Photo.association),
        selectinload(JuryRound.jurors).selectinload(Juror.user)))


# --------------------------------------------------------------------------------------------------------------------
# A juror's work


@dataclass(frozen=True)
class JurorSheet:
    """What one juror judges (the pool minus their association's photos, in pool order) and their votes so far."""

    items: list[JuryPhoto]
    votes: dict[int, int]  # photo id -> value

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def judged(self) -> int:
        return sum(1 for item in self.items if item.photo_id in self.votes)

    def next_unjudged(self, after: int = 0) -> int | None:
        """The 1-based position of the next photo without a vote after ``after``, wrapping round; None: all done."""
        n = len(self.items)
        for step in range(n):
            index = (after + step) % n
            if self.items[index].photo_id not in self.votes:
                return index + 1
        return None

    def position_of(self, photo_id: int) -> int | None:
        return next((n for n, item in enumerate(self.items, start=1) if item.photo_id == photo_id), None)


def sheet(session: Session, jury_round: JuryRound, user: User) -> JurorSheet:
    items = [item for item in jury_round.photos if not conflicted(user, item.photo)]
    votes = {photo_id: value for photo_id, value in session.execute(
        select(Vote.photo_id, Vote.value).where(Vote.round_id == jury_round.id, Vote.juror_id == user.id))}
    return JurorSheet(items, votes)


def not_a_juror() -> Refusal:
    return Refusal("not_a_juror", "Sie sind nicht in der Jury dieser Runde.", "You are not on this round's jury.",
                   status=403)


def cast_vote(session: Session, jury_round: JuryRound, user: User, photo_id: int, value: int) -> Vote:
    """Records (or changes) ``user``'s vote on one photo of the round."""
    if not is_juror(jury_round, user):
        raise not_a_juror()
    if jury_round.closed_at is not None:
        raise Refusal("round_closed", "Die Runde ist abgeschlossen; Stimmen können nicht mehr geändert werden.",
                      "The round is closed; votes can no longer be changed.", status=409)
    if deadline_passed(jury_round):
        raise Refusal("deadline_passed",
                      "Die Frist dieser Runde ist abgelaufen; es kann nicht mehr abgestimmt werden. Bitte wenden Sie "
                      "sich an die Person, die die Runde leitet.",
                      "This round's deadline has passed; voting is over. Please contact the person running the round.",
                      status=409)
    item = next((item for item in jury_round.photos if item.photo_id == photo_id), None)
    if item is None:
        raise Refusal("not_in_round", "Dieses Foto gehört nicht zu dieser Runde.",
                      "This photo is not part of this round.", status=404)
    if conflicted(user, item.photo):
        raise Refusal("conflict_of_interest",
                      "Fotos Ihres eigenen Vereins bewerten Sie nicht (Interessenkonflikt).",
                      "You do not judge your own association's photos (conflict of interest).", status=403)
    if value not in VALUES[jury_round.mode]:
        raise Refusal("vote_invalid",
                      "Bitte stimmen Sie mit Ja oder Nein." if jury_round.mode == JuryMode.YES_NO
                      else "Bitte vergeben Sie 1 bis 5 Sterne.",
                      "Please vote yes or no." if jury_round.mode == JuryMode.YES_NO else "Please give 1 to 5 stars.",
                      status=422)
    vote = session.scalar(select(Vote).where(Vote.round_id == jury_round.id, Vote.photo_id == photo_id,
                                             Vote.juror_id == user.id))
    if vote is None:
        vote = Vote(round_id=jury_round.id, photo_id=photo_id, juror_id=user.id, value=value)
        session.add(vote)
    else:
        vote.value, vote.at = value, utcnow()
    try:
        session.commit()
    except IntegrityError:  # a double click: the other request's vote is there now; this one changes it
        session.rollback()
        return cast_vote(session, jury_round, user, photo_id, value)
    return vote


# --------------------------------------------------------------------------------------------------------------------
# Scores, progress and closing


@dataclass
class Standing:
    """One photo of the pool with every vote on it (juror user id -> value), the count and the score."""

    item: JuryPhoto
    votes: dict[int, int] = field(default_factory=dict)
    excluded: set[int] = field(default_factory=set)  # jurors who may not judge it (their association's photo)
    rank: int = 0

    @property
    def photo(self) -> Photo:
        return self.item.photo

    @property
    def count(self) -> int:
        return len(self.votes)

    @property
    def score(self) -> float | None:
        return sum(self.votes.values()) / len(self.votes) if self.votes else None


def rank_key(standing: Standing) -> tuple[int, float, int, int]:
    """Best first: scored before unscored, higher score, more votes, lower photo id."""
    score = standing.score
    return (0 if score is not None else 1, -(score or 0.0), -standing.count, standing.photo.id)


def standings(session: Session, jury_round: JuryRound) -> list[Standing]:
    """The pool ranked best first."""
    rows = {item.photo_id: Standing(item) for item in jury_round.photos}
    for photo_id, juror_id, value in session.execute(
            select(Vote.photo_id, Vote.juror_id, Vote.value).where(Vote.round_id == jury_round.id)):
        if photo_id in rows:
            rows[photo_id].votes[juror_id] = value
    for juror in jury_round.jurors:
        for standing in rows.values():
            if conflicted(juror.user, standing.photo):
                standing.excluded.add(juror.user_id)
    ranked = sorted(rows.values(), key=rank_key)
    for n, standing in enumerate(ranked, start=1):
        standing.rank = n
    return ranked


@dataclass(frozen=True)
class Progress:
    juror: User
    judged: int
    total: int

    @property
    def missing(self) -> int:
        return self.total - self.judged


def progress(session: Session, jury_round: JuryRound) -> list[Progress]:
    """Every juror's "12 von 40" (no values: those are the organiser's only)."""
    rows = []
    for juror in sorted(jury_round.jurors, key=lambda j: j.user.username):
        mine = sheet(session, jury_round, juror.user)
        rows.append(Progress(juror.user, mine.judged, mine.total))
    return rows


def shown_score(score: float) -> float:
    """The score as people read it (yes/no: whole per cent, stars: two decimals, halves rounded up), in score units:
    cutoffs compare this, so what the page shows is what counts."""
    # A share to two decimals is a whole per cent; a mean of stars to two decimals is what the page shows.
    return math.floor(score * 100 + 0.5 + EPSILON) / 100


def score_text(mode: JuryMode, score: float | None) -> str:
    """How a score reads: "67 % Ja" or "3,5 Sterne"; "—" without votes."""
    if score is None:
        return "—"
    shown = shown_score(score)
    if mode == JuryMode.YES_NO:
        return f"{round(shown * 100):d} % Ja"
    return f"{shown:.2f}".rstrip("0").rstrip(".").replace(".", ",") + " Sterne"


@dataclass(frozen=True)
class Closing:
    selected: int
    missing_votes: int
    unscored: int
    tied: int  # photos that shared the score at the boundary of a count rule (0: no tie there)


def close_round(session: Session, jury_round: JuryRound, actor: User, rule: str, value: float) -> Closing:
    """Closes the round by ``rule`` ("count": keep the best ``value`` photos; "cutoff": every photo whose score is at
    least ``value``: a share 0–1 for yes/no, 1–5 for stars). Missing votes do not stop it: the organiser decides."""
    if not may_close(jury_round, actor):
        raise Refusal("not_organiser",
                      "Diese Runde schließt, wer sie angelegt hat, oder eine Kurator:in, die nicht in ihrer Jury ist.",
                      "This round is closed by whoever made it, or by a curator who is not on its jury.", status=403)
    if jury_round.closed_at is not None:
        raise Refusal("round_closed", "Diese Runde ist schon abgeschlossen.", "This round is already closed.",
                      status=409)
    if rule not in RULES:
        raise Refusal("rule_unknown", "Bitte wählen Sie: die besten N behalten oder ab einem Mindestwert.",
                      "Please choose: keep the best N, or from a minimum score.", status=422)
    ranked = standings(session, jury_round)
    scored = [s for s in ranked if s.score is not None]
    tied = 0
    if rule == "count":
        if value != int(value) or value < 1:
            raise Refusal("count_invalid", "Bitte geben Sie eine ganze Zahl ab 1 an (wie viele Fotos bleiben).",
                          "Please give a whole number from 1 (how many photos to keep).", status=422)
        keep = int(value)
        chosen = scored[:keep]
        if 0 < keep < len(scored):
            boundary = scored[keep - 1].score
            assert boundary is not None
            tied_group = [s for s in scored if abs((s.score or 0.0) - boundary) < EPSILON]
            if any(s.rank > keep for s in tied_group):
                tied = len(tied_group)
    else:
        low, high = (0.0, 1.0) if jury_round.mode == JuryMode.YES_NO else (1.0, 5.0)
        if not low <= value <= high:
            raise Refusal("cutoff_invalid",
                          "Bitte geben Sie einen Mindestwert zwischen 0 und 100 % an." if low == 0.0
                          else "Bitte geben Sie einen Mindestwert zwischen 1 und 5 Sternen an.",
                          "Please give a minimum between 0 and 100 %." if low == 0.0
                          else "Please give a minimum between 1 and 5 stars.", status=422)
        chosen = [s for s in scored if shown_score(s.score or 0.0) >= value - EPSILON]
    chosen_ids = {s.item.photo_id for s in chosen}
    for standing in ranked:
        standing.item.selected = standing.item.photo_id in chosen_ids
    missing = sum(p.missing for p in progress(session, jury_round))
    unscored = len(ranked) - len(scored)
    jury_round.closed_at = utcnow()
    jury_round.close_rule = rule
    jury_round.close_value = float(value)
    audit.record(session, "jury.closed", actor=actor, subject="jury_round", subject_id=jury_round.id,
                 rule=rule, value=float(value), selected=len(chosen_ids), pool=len(ranked), missing_votes=missing,
                 unscored=unscored, tied=tied, photos=sorted(chosen_ids))
    session.commit()
    return Closing(len(chosen_ids), missing, unscored, tied)


# --------------------------------------------------------------------------------------------------------------------
# The results as CSV (the organiser's download: not blind)


def results_csv(session: Session, jury_round: JuryRound) -> Iterator[str]:
    """The results, row by row in pool order: position, photo id, title, association, photographer, one column per
    juror (their vote; "x" where they may not judge the photo, empty where they did not vote), the number of votes,
    the score (yes/no: share of yes 0–1; stars: mean), selected (ja/nein; empty while the round is open)."""
    ranked = standings(session, jury_round)
    jurors = sorted(jury_round.jurors, key=lambda j: j.user.username)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    score_name = "Wert (Anteil Ja, 0–1)" if jury_round.mode == JuryMode.YES_NO else "Wert (Mittel der Sterne)"
    writer.writerow(["Position", "Foto-Nr.", "Titel", "Verein", "Fotograf:in",
                     *[spreadsheet_safe(j.user.username) for j in jurors], "Stimmen", score_name, "Ausgewählt"])
    yield "\ufeff" + flush()  # the byte order mark tells spreadsheet programs it is UTF-8
    for standing in sorted(ranked, key=lambda s: s.item.position):
        photo = standing.photo
        votes = [("x" if j.user_id in standing.excluded else "") if j.user_id not in standing.votes
                 else str(standing.votes[j.user_id]) for j in jurors]
        score = standing.score
        selected = "" if standing.item.selected is None else ("ja" if standing.item.selected else "nein")
        writer.writerow([standing.item.position, photo.id, spreadsheet_safe(photo.title),
                         spreadsheet_safe(photo.association.name), spreadsheet_safe(photo.credit), *votes,
                         standing.count,
                         "" if score is None else f"{score:.3f}".rstrip("0").rstrip("."), selected])
        yield flush()
