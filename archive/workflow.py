"""The curators' workflow: the one transition function, the publication gate, the rights bundle and consent.

Every change here is written to the audit log (who, when, before and after, why) and to the outbox (so search
follows) in the caller's transaction; the functions commit. Views call these and nothing else to change a photo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from . import audit
from .errors import Refusal, changed_meanwhile
from .models import (
    Association,
    Consent,
    ConsentScope,
    Licence,
    OutboxEvent,
    PeopleShown,
    Photo,
    PhotoStatus,
    PhotoText,
    Place,
    Tag,
    User,
    utcnow,
)
from .text import clean_typed

S = PhotoStatus

# action -> (allowed from, to, needs a reason)
ACTIONS: dict[str, tuple[frozenset[PhotoStatus], PhotoStatus, bool]] = {
    "review": (frozenset({S.SUBMITTED}), S.IN_REVIEW, False),
    "publish": (frozenset({S.SUBMITTED, S.IN_REVIEW}), S.PUBLISHED, False),
    "return": (frozenset({S.SUBMITTED, S.IN_REVIEW}), S.RETURNED, True),
    "reject": (frozenset({S.SUBMITTED, S.IN_REVIEW}), S.REJECTED, True),
    "withdraw": (frozenset({S.PUBLISHED}), S.WITHDRAWN, True),
    # The association sends a returned photo back after fixing it; a withdrawn one can be looked at again.
    "resubmit": (frozenset({S.RETURNED}), S.SUBMITTED, False),
    "reconsider": (frozenset({S.WITHDRAWN, S.REJECTED}), S.IN_REVIEW, False),
}
# What only the owning association's members may do besides curators and admins.
MEMBER_ACTIONS = frozenset({"resubmit"})

# How an action reads in "… kann nicht veröffentlicht werden" / "… cannot be published".
ACTION_PARTICIPLES = {
    "review": ("in Prüfung genommen", "taken into review"),
    "publish": ("veröffentlicht", "published"),
    "return": ("zurückgegeben", "returned"),
    "reject": ("abgelehnt", "rejected"),
    "withdraw": ("zurückgezogen", "withdrawn"),
    "resubmit": ("erneut eingereicht", "submitted again"),
    "reconsider": ("erneut geprüft", "reviewed again"),
}

# The buttons' labels, in the page's language (lazy: translated when shown).
ACTION_LABELS = {
    "review": _l("in Prüfung nehmen"),
    "publish": _l("veröffentlichen"),
    "return": _l("an den Verein zurückgeben"),
    "reject": _l("ablehnen"),
    "withdraw": _l("zurückziehen"),
    "resubmit": _l("erneut einreichen"),
    "reconsider": _l("erneut prüfen"),
}


def action_label(action: str) -> str:
    return str(ACTION_LABELS[action])


LICENCES = {
    Licence.CC_BY: ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"),
    Licence.CC_BY_SA: ("CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/"),
    Licence.CC0: ("CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
    Licence.PROJECT_ONLY: ("nur für Fotoprojekt Brücken", None),
}

LANGUAGES = ("de", "en", "fr", "tr", "az", "uk", "rw")


# The one licence name that is a German text; LICENCES keeps it in German for the index and the exports.
PROJECT_ONLY_NAME = _l("nur für Fotoprojekt Brücken")


def licence_label(licence: Licence | str | None) -> str:
    """The licence's name as stored and indexed (German)."""
    return LICENCES[Licence(licence)][0] if licence else ""


def licence_name(licence: Licence | str | None) -> str:
    """The licence's name for a page, in its language."""
    if licence and Licence(licence) == Licence.PROJECT_ONLY:
        return str(PROJECT_ONLY_NAME)
    return licence_label(licence)


def attribution(photo: Photo) -> str:
    """The line printed beside the photo: "Foto: Anna Beispiel · CC BY 4.0"."""
    if not photo.credit:
        return ""
    parts = [f"Foto: {photo.credit}"]
    if photo.licence == Licence.PROJECT_ONLY:
        parts.append("Nutzung nur für Fotoprojekt Brücken")
    elif photo.licence:
        parts.append(licence_label(photo.licence))
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------------------------------
# Who may do what


def is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.sees_everything)


def owns(user: Any, photo: Photo) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.association_id == photo.association_id)


def can_edit(user: Any, photo: Photo) -> bool:
    """Curators and admins edit every photo; members their association's photos until they are published."""
    if is_staff(user):
        return True
    return owns(user, photo) and photo.status != S.PUBLISHED


def forbidden() -> Refusal:
    return Refusal("not_allowed", "Dafür fehlt Ihnen die Berechtigung.", "You are not allowed to do this.",
                   status=403)


# --------------------------------------------------------------------------------------------------------------------
# The publication gate


@dataclass(frozen=True)
class Gap:
    """One thing missing before a photo can be published."""

    field: str
    de: str
    en: str


def publication_gaps(photo: Photo, scope: ConsentScope = ConsentScope.WEB) -> list[Gap]:
    """Everything that keeps this photo from being shown in ``scope`` (the web by default). Empty: it may."""
    gaps: list[Gap] = []

    def need(ok: Any, field: str, de: str, en: str) -> None:
        if not ok:
            gaps.append(Gap(field, de, en))

    need(photo.title.strip(), "title", "ein Titel (Deutsch)", "a title (German)")
    need(photo.caption.strip(), "caption", "eine Bildunterschrift (Deutsch)", "a caption (German)")
    need(photo.alt_text.strip(), "alt_text", "ein Alternativtext für blinde Menschen (Deutsch)",
         "an alt text for blind people (German)")
    need(photo.credit.strip(), "credit", "der Name der Fotografin oder des Fotografen", "the photographer's name")
    need(photo.licence, "licence", "eine Lizenz", "a licence")
    need(photo.place_id, "place", "der Ort oder die Brücke", "the place or bridge")
    need(photo.taken_at, "taken_at", "das Aufnahmedatum", "the date the photo was taken")
    consents = [c for c in photo.consents if c.covers(scope)]
    if photo.people == PeopleShown.UNKNOWN:
        gaps.append(Gap("people", "die Angabe, ob erkennbare Personen zu sehen sind",
                        "whether identifiable people are shown"))
    elif photo.people == PeopleShown.CONSENT:
        need(consents, "consent", f"eine gültige Einwilligung der gezeigten Personen für „{_scope_de(scope)}“",
             f"a valid consent of the people shown for '{scope.value}'")
    elif photo.people == PeopleShown.PUBLIC_EVENT:
        need(photo.public_event_reason.strip(), "public_event_reason",
             "die Begründung einer Kuratorin oder eines Kurators (öffentliche Veranstaltung, KUG §23)",
             "a curator's justification (public event, KUG §23)")
    if photo.minors is None:
        gaps.append(Gap("minors", "die Angabe, ob Minderjährige zu sehen sind", "whether minors are shown"))
    elif photo.minors:
        need(any(c.by_guardian for c in consents), "guardian_consent",
             f"eine Einwilligung der Erziehungsberechtigten für „{_scope_de(scope)}“",
             f"a guardian's consent for '{scope.value}'")
    return gaps


def _scope_de(scope: ConsentScope) -> str:
    return {ConsentScope.WEB: "Website", ConsentScope.EXHIBITION: "Ausstellung", ConsentScope.PRINT: "Druck"}[scope]


def gate_refusal(photo: Photo, gaps: list[Gap]) -> Refusal:
    return Refusal("not_publishable",
                   f"„{photo.display_title}“ kann noch nicht veröffentlicht werden. Es fehlt: "
                   + "; ".join(g.de for g in gaps) + ".",
                   f"'{photo.display_title}' cannot be published yet. Missing: " + "; ".join(g.en for g in gaps) + ".",
                   status=409)


# --------------------------------------------------------------------------------------------------------------------
# The one transition function


def transition(session: Session, photo: Photo, action: str, actor: User | None, reason: str = "", *,
               commit: bool = True, automatic: bool = False) -> Photo:
    """Moves ``photo`` along the lifecycle; refuses what the action, the photo's state, the actor's role or the
    publication gate do not allow. ``automatic``: the archive itself acts on a change ``actor`` made (consent
    withdrawn), so the actor's role is not asked."""
    if action not in ACTIONS:
        raise Refusal("unknown_action", "Diese Aktion gibt es nicht.", "There is no such action.", status=400)
    sources, target, needs_reason = ACTIONS[action]
    if not automatic and not (is_staff(actor) or (action in MEMBER_ACTIONS and owns(actor, photo))):
        raise forbidden()
    if photo.status not in sources:
        de, en = ACTION_PARTICIPLES[action]
        raise Refusal("wrong_state",
                      f"„{photo.display_title}“ ist {status_de(photo.status)} und kann nicht {de} werden.",
                      f"'{photo.display_title}' is {photo.status.value.replace('_', ' ')} and cannot be {en}.",
                      status=409)
    reason = reason.strip()
    if needs_reason and not reason:
        raise Refusal("reason_missing", "Bitte geben Sie einen Grund an; der Verein sieht ihn.",
                      "Please give a reason; the association will see it.", status=422)
    if target == S.PUBLISHED and (gaps := publication_gaps(photo)):
        raise gate_refusal(photo, gaps)
    before = photo.status
    photo.status = target
    photo.status_reason = reason
    photo.status_changed_at = utcnow()
    audit.record(session, f"photo.{action}", actor=actor, photo_id=photo.id, before={"status": before},
                 after={"status": target}, reason=reason, **({"automatic": True} if automatic else {}))
    session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    if commit:
        session.commit()
    return photo


def status_de(status: PhotoStatus) -> str:
    """A status in German whatever the page's language: for the German half of a refusal or a German file column."""
    from .views import status_label

    return status_label(status, "de")


@dataclass
class BulkOutcome:
    done: list[int]
    refused: list[tuple[int, Refusal]]


def bulk_transition(session: Session, photos: Iterable[Photo], action: str, actor: User,
                    reason: str = "") -> BulkOutcome:
    """Each photo on its own: one that the gate refuses does not hold back the others."""
    outcome = BulkOutcome(done=[], refused=[])
    for photo in photos:
        try:
            transition(session, photo, action, actor, reason)
        except Refusal as refusal:
            session.rollback()
            outcome.refused.append((photo.id, refusal))
        except StaleDataError:
            session.rollback()
            outcome.refused.append((photo.id, changed_meanwhile()))
        else:
            outcome.done.append(photo.id)
    return outcome


# --------------------------------------------------------------------------------------------------------------------
# The rights bundle and the words


@dataclass
class RightsChange:
    """What an edit form sends. None: leave as it is."""

    title: str | None = None
    caption: str | None = None
    alt_text: str | None = None
    credit: str | None = None
    licence: Licence | None = None
    people: PeopleShown | None = None
    minors: bool | None = None
    public_event_reason: str | None = None
    place_id: int | None = None
    clear_place: bool = False
    taken_at: datetime | None = None
    translations: dict[str, tuple[str, str, str]] | None = None  # lang -> (title, caption, alt text)
    tag_ids: list[int] | None = None  # controlled tags chosen
    keywords: list[str] | None = None  # free keywords


RIGHTS_FIELDS = ("credit", "licence", "people", "minors", "public_event_reason", "place_id")
WORD_FIELDS = ("title", "caption", "alt_text", "taken_at")


def _snapshot(photo: Photo) -> dict[str, Any]:
    return {
        **{name: getattr(photo, name) for name in (*WORD_FIELDS, *RIGHTS_FIELDS)},
        "translations": {t.lang: [t.title, t.caption, t.alt_text] for t in photo.translations},
        "tags": sorted(t.name for t in photo.tags),
    }


def update_photo(session: Session, photo: Photo, change: RightsChange, actor: User) -> Photo:
    """Applies an edit of the words and the rights bundle, after checking who may change what. A published photo
    must stay publishable: an edit that would leave gaps is refused (withdraw the photo first)."""
    if not can_edit(actor, photo):
        raise forbidden()
    if change.public_event_reason is not None and change.public_event_reason.strip() != photo.public_event_reason \
            and not is_staff(actor):
        raise Refusal("curator_only", "Die Begründung für eine öffentliche Veranstaltung schreibt eine "
                      "Kuratorin oder ein Kurator.", "The public-event justification is written by a curator.",
                      status=403)
    before = _snapshot(photo)
    # Typed text is stored clean (no control characters or right-to-left overrides that would turn a name around
    # on every page and in every log); only captions and the justification keep their line breaks.
    for name in ("title", "caption", "alt_text", "credit", "public_event_reason"):
        value = getattr(change, name)
        if value is not None:
            setattr(photo, name, clean_typed(value, multiline=name in ("caption", "public_event_reason")))
    photo.title = photo.title[:300]
    photo.credit = photo.credit[:200]
    for name in ("licence", "people", "minors"):
        value = getattr(change, name)
        if value is not None:
            setattr(photo, name, value)
    if change.taken_at is not None and not _same_minute(photo.taken_at, change.taken_at):
        photo.taken_at = change.taken_at  # forms send minutes: the camera's seconds stay unless the time changed
    if change.clear_place:
        photo.place_id = None
    elif change.place_id is not None:
        if session.get(Place, change.place_id) is None:
            raise Refusal("unknown_place", "Diesen Ort gibt es nicht in der Liste.",
                          "This place is not in the list.", status=422)
        photo.place_id = change.place_id
    if change.translations is not None:
        _set_translations(photo, change.translations)
    if change.tag_ids is not None or change.keywords is not None:
        _set_tags(session, photo, change.tag_ids, change.keywords)
    session.flush()
    session.refresh(photo, ["place"])
    if photo.status == S.PUBLISHED and (gaps := publication_gaps(photo)):
        session.rollback()
        refusal = gate_refusal(photo, gaps)
        raise Refusal("would_unpublish",
                      "Diese Änderung ist bei einem veröffentlichten Foto nicht möglich, weil dann fehlen würde: "
                      + "; ".join(g.de for g in gaps) + ". Ziehen Sie das Foto zuerst zurück.",
                      "This change is not possible on a published photo, because it would then lack: "
                      + "; ".join(g.en for g in gaps) + ". Withdraw the photo first.", status=409) from refusal
    old, new = audit.changes(before, _snapshot(photo))
    if new:
        rights = {name for name in new if name in RIGHTS_FIELDS}
        audit.record(session, "photo.rights_changed" if rights else "photo.edited", actor=actor,
                     photo_id=photo.id, before=old, after=new)
        session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    session.commit()
    return photo


def _same_minute(a: datetime | None, b: datetime) -> bool:
    return a is not None and a.replace(second=0, microsecond=0) == b.replace(second=0, microsecond=0)


def _set_translations(photo: Photo, translations: dict[str, tuple[str, str, str]]) -> None:
    existing = {t.lang: t for t in photo.translations}
    for lang, (title, caption, alt_text) in translations.items():
        if lang not in LANGUAGES or lang == "de":
            continue
        texts = (clean_typed(title)[:300], clean_typed(caption, multiline=True), clean_typed(alt_text))
        row = existing.get(lang)
        if not any(texts):
            if row is not None:
                photo.translations.remove(row)
            continue
        if row is None:
            row = PhotoText(lang=lang)
            photo.translations.append(row)
        row.title, row.caption, row.alt_text = texts


def _set_tags(session: Session, photo: Photo, tag_ids: list[int] | None, keywords: list[str] | None) -> None:
    """Controlled tags come from the curators' list; free keywords are made as needed (never controlled)."""
    controlled = [t for t in photo.tags if t.controlled]
    free = [t for t in photo.tags if not t.controlled]
    if tag_ids is not None:
        controlled = list(session.scalars(select(Tag).where(Tag.id.in_(tag_ids), Tag.controlled.is_(True))))
    if keywords is not None:
        free = []
        from .vocabulary import find_tag  # one rule for "the same word": case and Unicode spelling aside

        for word in dict.fromkeys(k.strip()[:100] for k in keywords if k.strip()):
            tag = session.scalar(select(Tag).where(Tag.name == word)) or find_tag(session, word)
            if tag is None:
                tag = Tag(name=word, controlled=False)
                session.add(tag)
            if tag not in controlled and tag not in free:  # "Brücke, brücke" is one word
                free.append(tag)
    photo.tags = [*controlled, *free]


def change_owner(session: Session, photo: Photo, association: Association, actor: User) -> Photo:
    """A photo filed under the wrong association moves; only curators and admins may move it."""
    if not is_staff(actor):
        raise forbidden()
    if association.id == photo.association_id:
        return photo
    before = photo.association.slug
    photo.association_id = association.id
    audit.record(session, "photo.owner_changed", actor=actor, photo_id=photo.id, before={"association": before},
                 after={"association": association.slug})
    session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    session.commit()
    session.refresh(photo, ["association"])
    return photo


# --------------------------------------------------------------------------------------------------------------------
# Consent


def record_consent(session: Session, photo: Photo, actor: User, *, person: str, given_on: date,
                   scopes: Iterable[ConsentScope], by_guardian: bool = False, reference: str = "") -> Consent:
    if not (is_staff(actor) or owns(actor, photo)):
        raise forbidden()
    scopes = set(scopes)
    if not person.strip():
        raise Refusal("consent_person", "Bitte geben Sie an, wer eingewilligt hat.",
                      "Please say who gave consent.", status=422)
    if not scopes:
        raise Refusal("consent_scope", "Bitte wählen Sie, wofür die Einwilligung gilt (Website, Ausstellung, Druck).",
                      "Please choose what the consent covers (web, exhibition, print).", status=422)
    if given_on > date.today():
        raise Refusal("consent_date", "Das Datum der Einwilligung liegt in der Zukunft.",
                      "The consent's date is in the future.", status=422)
    consent = Consent(person=person.strip()[:200], given_on=given_on, by_guardian=by_guardian,
                      reference=reference.strip()[:300], recorded_by_id=actor.id,
                      **{f"scope_{scope.value}": scope in scopes for scope in ConsentScope})
    photo.consents.append(consent)
    session.flush()
    audit.record(session, "consent.recorded", actor=actor, photo_id=photo.id, subject="consent",
                 subject_id=consent.id, after={"person": consent.person, "by_guardian": by_guardian,
                                               "given_on": given_on, "scopes": sorted(s.value for s in scopes),
                                               "reference": consent.reference})
    session.commit()
    return consent


def withdraw_consent(session: Session, photo: Photo, consent: Consent, actor: User, reason: str = "") -> Photo:
    """Consent withdrawn (DSGVO Art. 7(3)): recorded, and if the photo may then no longer be shown on the web it
    is withdrawn in the same transaction. Its images stop being served at once (the media route checks the status)
    and search hides it before the index has caught up (see archive.views.search)."""
    if not (is_staff(actor) or owns(actor, photo)):
        raise forbidden()
    if consent.photo_id != photo.id or not consent.active:
        raise Refusal("consent_not_active", "Diese Einwilligung ist nicht (mehr) gültig.",
                      "This consent is not (or no longer) valid.", status=409)
    consent.withdrawn_at = utcnow()
    consent.withdrawn_by_id = actor.id
    consent.withdrawn_reason = reason.strip()
    audit.record(session, "consent.withdrawn", actor=actor, photo_id=photo.id, subject="consent",
                 subject_id=consent.id, before={"active": True}, after={"active": False},
                 reason=consent.withdrawn_reason)
    session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    flag_modified(photo, "people")  # the photo's row takes part: a publication at the same moment conflicts
    # Whoever withdrew, the photo stops being public now, even when other consents remain: the person who
    # withdrew is in it. A curator may publish it again after checking (e.g. with that person cropped out).
    if photo.status == S.PUBLISHED and consent.covers_when_active(ConsentScope.WEB):
        # The archive does this, whoever recorded the withdrawal: a member may not withdraw photos otherwise.
        transition(session, photo, "withdraw", actor, "Einwilligung widerrufen / consent withdrawn", commit=False,
                   automatic=True)
    session.commit()
    return photo
