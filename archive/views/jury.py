"""Jury rounds: the list, a new round, the organiser's page (pool, progress, closing, CSV) and the juror's page
(one photo at a time). Curators and admins only; the logic lives in archive.jury.

A juror of a round sees only their own votes: while the round is open its scores, everybody's votes and the CSV are
for the other curators and admins (the organiser), not for its jurors.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import jury
from ..auth import curators_only
from ..errors import Refusal
from ..errors_web import language
from ..models import Exhibition, JuryMode, JuryPhoto, JuryRound, Role, Shortlist, User, db, parse_id, utcnow
from ..services import get_search_index

bp = Blueprint("jury", __name__)

POOL_KINDS = ("shortlist", "search", "photos", "round")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"score_text": score_text, "mode_label": mode_label}


def mode_label(mode: JuryMode) -> str:
    """ "Ja/Nein" or "1–5 Sterne", in the page's language (archive.jury keeps both)."""
    de, en = jury.MODE_LABELS[JuryMode(mode)]
    return en if language() == "en" else de


def score_text(mode: JuryMode, score: float | None) -> str:
    """How a score reads on the page: "67 % Ja" / "67% yes", "3,5 Sterne" / "3.5 stars"; "—" without votes.
    The same rounding as archive.jury.score_text (what the page shows is what a cutoff compares)."""
    if score is None:
        return "—"
    shown = jury.shown_score(score)
    if mode == JuryMode.YES_NO:
        return _("%(pct)d %% Ja", pct=round(shown * 100))
    return _("%(stars)s Sterne", stars=format_decimal(shown, "0.##"))


def _local_zone() -> Any:
    try:
        return ZoneInfo(current_app.config.get("TIME_ZONE") or "Europe/Berlin")
    except ZoneInfoNotFoundError:  # a system without time zone data
        return UTC


def _round_or_404(round_id: int) -> JuryRound:
    found = jury.load_round(db.session, round_id)
    if found is None:
        abort(404)
    return found


# --------------------------------------------------------------------------------------------------------------------
# The list


@bp.get("/curate/jury")
@curators_only
def rounds() -> Any:
    found = db.session.scalars(select(JuryRound).options(selectinload(JuryRound.jurors),
                                                         selectinload(JuryRound.photos).selectinload(JuryPhoto.photo))
                               .order_by(JuryRound.closed_at.is_not(None), JuryRound.created_at.desc())).all()
    exhibitions = {e.id: e.title for e in db.session.scalars(select(Exhibition))}
    mine = {r.id: jury.sheet(db.session, r, current_user) for r in found if jury.is_juror(r, current_user)}
    return render_template("jury/rounds.html", rounds=found, mine=mine, exhibitions=exhibitions, now=utcnow())


# --------------------------------------------------------------------------------------------------------------------
# A new round


def _deadline(raw: str) -> datetime | None:
    """A datetime-local value in Ludwigshafen time -> UTC as the database keeps it."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        raise Refusal("deadline_invalid", "Bitte geben Sie die Frist als Datum und Uhrzeit an (TT.MM.JJJJ, HH:MM).",
                      "Please give the deadline as a date and time.", status=422) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=_local_zone())
    return local.astimezone(UTC).replace(tzinfo=None)


def _ids(raw: str) -> list[int]:
    """ "12, 15 17" -> [12, 15, 17]; "#12" and "Nr. 12" are fine too."""
    return [ident for part in re.findall(r"\d+", raw) if (ident := parse_id(part)) is not None]


def _int_field(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    return parse_id(raw)


def _pool() -> jury.Pool:
    kind = request.form.get("pool", "")
    if kind == "shortlist":
        shortlist_id = _int_field("shortlist_id")
        if shortlist_id is None:
            raise Refusal("shortlist_missing", "Bitte wählen Sie eine Auswahlliste.", "Please choose a shortlist.",
                          status=422)
        return jury.pool_from_shortlist(db.session, shortlist_id)
    if kind == "search":
        return jury.pool_from_search(get_search_index(), request.form.get("query", ""))
    if kind == "photos":
        ids = _ids(request.form.get("photo_ids", ""))
        if not ids:
            raise Refusal("photos_missing", "Bitte geben Sie die Nummern der Fotos an (zum Beispiel: 12, 15, 17).",
                          "Please give the photos' numbers (for example: 12, 15, 17).", status=422)
        return jury.pool_from_photos(ids)
    if kind == "round":
        round_id = _int_field("from_round")
        if round_id is None:
            raise Refusal("round_missing", "Bitte wählen Sie eine abgeschlossene Runde.",
                          "Please choose a closed round.", status=422)
        return jury.pool_from_round(db.session, round_id)
    raise Refusal("pool_missing", "Bitte wählen Sie, woher die Fotos der Runde kommen.",
                  "Please choose where the round's photos come from.", status=422)


def _form_values() -> dict[str, Any]:
    if request.method == "POST":
        form = request.form
        return {"name": form.get("name", ""), "exhibition_id": form.get("exhibition_id", ""),
                "mode": form.get("mode", ""), "blind": form.get("blind") == "1", "deadline": form.get("deadline", ""),
                "juror_ids": set(form.getlist("juror_ids")), "pool": form.get("pool", ""),
                "shortlist_id": form.get("shortlist_id", ""), "query": form.get("query", ""),
                "photo_ids": form.get("photo_ids", ""), "from_round": form.get("from_round", "")}
    args = request.args
    pool = next((kind for kind, arg in (("round", "from_round"), ("shortlist", "shortlist_id"), ("search", "query"),
                                        ("photos", "photo_ids")) if args.get(arg)), "shortlist")
    return {"name": "", "exhibition_id": args.get("exhibition_id", ""), "mode": "yes_no", "blind": True,
            "deadline": "", "juror_ids": set(), "pool": pool, "shortlist_id": args.get("shortlist_id", ""),
            "query": args.get("query", ""), "photo_ids": args.get("photo_ids", ""),
            "from_round": args.get("from_round", "")}


@bp.route("/curate/jury/new", methods=["GET", "POST"])
@curators_only
def new_round() -> Any:
    error, status = None, 200
    if request.method == "POST":
        try:
            created = jury.create_round(
                db.session, current_user, name=request.form.get("name", ""), mode=request.form.get("mode", ""),
                blind=request.form.get("blind") == "1", deadline=_deadline(request.form.get("deadline", "")),
                juror_ids=[i for v in request.form.getlist("juror_ids") if (i := parse_id(v)) is not None],
                pool=_pool(), exhibition_id=_int_field("exhibition_id"))
        except Refusal as refusal:
            db.session.rollback()
            error, status = refusal, refusal.status
        else:
            flash(_("Die Runde „%(name)s“ ist angelegt: %(photos)s, %(jurors)s.", name=created.name,
                    photos=ngettext("%(num)d Foto", "%(num)d Fotos", len(created.photos)),
                    jurors=ngettext("%(num)d Person in der Jury", "%(num)d in der Jury", len(created.jurors))),
                  "ok")
            return redirect(url_for("jury.round_page", round_id=created.id))
    candidates = db.session.scalars(select(User).where(User.role.in_([Role.CURATOR, Role.ADMIN]),
                                                       User.active.is_(True)).order_by(User.username)).all()
    return render_template(
        "jury/new.html", values=_form_values(), jurors=candidates,
        shortlists=db.session.scalars(select(Shortlist).order_by(Shortlist.name)).all(),
        exhibitions=db.session.scalars(select(Exhibition).order_by(Exhibition.created_at.desc())).all(),
        closed=db.session.scalars(select(JuryRound).where(JuryRound.closed_at.is_not(None))
                                  .order_by(JuryRound.closed_at.desc())).all(),
        error=error and error.message(language()), error_en=error and error.en), status


# --------------------------------------------------------------------------------------------------------------------
# The organiser's page, closing, the CSV


def _round_page(found: JuryRound, error: Refusal | None = None, form: dict[str, str] | None = None,
                status: int = 200) -> Any:
    results = jury.may_see_results(found, current_user)
    return render_template(
        "jury/round.html", round=found, results=results, standings=jury.standings(db.session, found) if results else [],
        progress=jury.progress(db.session, found), juror=jury.is_juror(found, current_user),
        may_close=jury.may_close(found, current_user) and found.closed_at is None,
        exhibition=db.session.get(Exhibition, found.exhibition_id) if found.exhibition_id else None,
        organiser=db.session.get(User, found.created_by_id) if found.created_by_id else None,
        deadline_passed=jury.deadline_passed(found), form=form or {"rule": "count", "value": ""},
        error=error and error.message(language()), error_en=error and error.en), status


@bp.get("/curate/jury/<int:round_id>")
@curators_only
def round_page(round_id: int) -> Any:
    return _round_page(_round_or_404(round_id))


def _number(raw: str) -> float:
    try:
        number = float(raw.strip().replace(",", ".").rstrip("%").strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # "nan" and "inf" are floats too
        raise Refusal("value_missing", "Bitte geben Sie eine Zahl an.", "Please give a number.", status=422)
    return number


@bp.post("/curate/jury/<int:round_id>/close")
@curators_only
def close(round_id: int) -> Any:
    found = _round_or_404(round_id)
    rule, raw = request.form.get("rule", ""), request.form.get("value", "")
    try:
        value = _number(raw)
        if rule == "cutoff" and found.mode == JuryMode.YES_NO:
            value = value / 100  # the form asks for per cent
        outcome = jury.close_round(db.session, found, current_user, rule, value)
    except Refusal as refusal:
        db.session.rollback()
        if refusal.status == 403:
            raise
        return _round_page(_round_or_404(round_id), refusal, {"rule": rule, "value": raw}, refusal.status)
    flash(_closing_message(found, outcome), "warning" if outcome.missing_votes or outcome.tied else "ok")
    return redirect(url_for("jury.round_page", round_id=round_id))


def _closing_message(found: JuryRound, outcome: jury.Closing) -> str:
    """What closing did, in the page's language."""
    parts = [ngettext("Runde „%(name)s“ abgeschlossen: %(selected)d von %(num)d Foto ausgewählt.",
                      "Runde „%(name)s“ abgeschlossen: %(selected)d von %(num)d Fotos ausgewählt.",
                      len(found.photos), name=found.name, selected=outcome.selected)]
    if outcome.missing_votes:
        parts.append(ngettext("%(num)d Stimme fehlte.", "%(num)d Stimmen fehlten.", outcome.missing_votes))
    if outcome.unscored:
        parts.append(ngettext("%(num)d Foto hatte keine Stimme und wurde nicht ausgewählt.",
                              "%(num)d Fotos hatten keine Stimme und wurden nicht ausgewählt.", outcome.unscored))
    if outcome.tied:
        parts.append(_("An der Grenze hatten %(num)d Fotos denselben Wert; entschieden hat die Zahl der Stimmen, "
                       "dann die Foto-Nr. (ältere zuerst).", num=outcome.tied))
    return " ".join(parts)


@bp.get("/curate/jury/<int:round_id>/results.csv")
@curators_only
def results_csv(round_id: int) -> Any:
    found = _round_or_404(round_id)
    if not jury.may_see_results(found, current_user):
        raise Refusal("results_hidden",
                      "Sie sind in der Jury dieser Runde: die Ergebnisse sehen Sie, wenn die Runde abgeschlossen ist.",
                      "You are on this round's jury: you will see the results when the round is closed.", status=403)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    response = Response(stream_with_context(jury.results_csv(db.session, found)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="jury-runde-{found.id}-{stamp}.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------------------------------------------------
# The juror's page


def _juror_round(round_id: int) -> JuryRound:
    found = _round_or_404(round_id)
    if not jury.is_juror(found, current_user):
        raise jury.not_a_juror()
    return found


@bp.get("/curate/jury/<int:round_id>/judge")
@curators_only
def judge(round_id: int) -> Any:
    found = _juror_round(round_id)
    mine = jury.sheet(db.session, found, current_user)
    position = request.args.get("position", type=int)
    if position is None and request.args.get("overview") != "1" and jury.voting_open(found):
        position = mine.next_unjudged()
    if position is not None and not 1 <= position <= mine.total:
        abort(404)
    item = mine.items[position - 1] if position is not None else None
    return render_template("jury/judge.html", round=found, sheet=mine, position=position, item=item,
                           vote=mine.votes.get(item.photo_id) if item is not None else None,
                           open=jury.voting_open(found), deadline_passed=jury.deadline_passed(found),
                           values=jury.VALUES[found.mode])


@bp.post("/curate/jury/<int:round_id>/judge")
@curators_only
def vote(round_id: int) -> Any:
    found = _juror_round(round_id)
    photo_id, raw = _int_field("photo_id"), request.form.get("value", "").strip()
    if photo_id is None:
        raise Refusal("photo_missing", "Es fehlt, welches Foto Sie bewerten.",
                      "Which photo you are judging is missing.", status=422)
    value = parsed if (parsed := parse_id(raw)) is not None else -1  # -1: refused by cast_vote as no valid vote
    jury.cast_vote(db.session, found, current_user, photo_id, value)
    mine = jury.sheet(db.session, found, current_user)
    here = mine.position_of(photo_id) or 0
    following = mine.next_unjudged(after=here)
    if following is None:
        flash(ngettext("Danke! Sie haben das Foto dieser Runde bewertet. Bis zum Ende der Runde können Sie "
                       "Ihre Stimme noch ändern.",
                       "Danke! Sie haben alle %(num)d Fotos dieser Runde bewertet. Bis zum Ende der Runde können Sie "
                       "Ihre Stimmen noch ändern.", mine.total), "ok")
        return redirect(url_for("jury.judge", round_id=round_id, overview=1))
    return redirect(url_for("jury.judge", round_id=round_id, position=following))

