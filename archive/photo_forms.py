"""What the photo forms send, read into the workflow's terms. Plain functions over a form mapping: each
refuses bad input with the field named, in German and English, and knows nothing of Flask."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from .errors import Refusal
from .models import ConsentScope, Licence, PeopleShown, parse_id
from .workflow import LANGUAGES, RightsChange


def _choice(form: Mapping[str, Any], name: str, kind: type, de: str, en: str) -> Any:
    value = (form.get(name) or "").strip()
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise Refusal(f"bad_{name}", f"{de}: „{value}“ gibt es nicht.", f"{en}: '{value}' is not a choice.",
                      status=422) from None


def _yes_no(form: Mapping[str, Any], name: str) -> bool | None:
    value = (form.get(name) or "").strip()
    return {"yes": True, "no": False}.get(value)


def _taken_at(form: Mapping[str, Any]) -> datetime | None:
    value = (form.get("taken_at") or "").strip()
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(value, pattern)
        except ValueError:
            continue
        if not 1826 <= moment.year <= datetime.now().year + 1:
            break
        return moment
    raise Refusal("bad_taken_at", f"Das Aufnahmedatum „{value}“ ist kein gültiges Datum (z. B. 2024-06-01).",
                  f"The date taken '{value}' is not a valid date (e.g. 2024-06-01).", status=422)


def rights_change(form: Any, *, upload_defaults: bool = False) -> RightsChange:
    """The edit form (or the upload form's defaults for every file) as a RightsChange. Fields the form does not
    carry stay None: "leave as it is"."""
    change = RightsChange(
        credit=form.get("credit"),
        licence=_choice(form, "licence", Licence, "Lizenz", "Licence"),
        people=_choice(form, "people", PeopleShown, "Personen", "People shown"),
        minors=_yes_no(form, "minors"),
    )
    if upload_defaults:
        change.credit = (change.credit or "").strip() or None
        return change
    change.title = form.get("title")
    change.caption = form.get("caption")
    change.alt_text = form.get("alt_text")
    if "public_event_reason" in form:
        change.public_event_reason = form.get("public_event_reason")
    if "place" in form:
        change.place_id = parse_id(form.get("place"))
        change.clear_place = change.place_id is None
    change.taken_at = _taken_at(form)
    sent = [lang for lang in LANGUAGES if lang != "de" and f"title_{lang}" in form]
    if sent:  # only the languages the form carries: a script sending English leaves French alone
        change.translations = {lang: (form.get(f"title_{lang}", ""), form.get(f"caption_{lang}", ""),
                                      form.get(f"alt_text_{lang}", "")) for lang in sent}
    if "tags_shown" in form:  # the checkboxes were on the page: none ticked means none wanted
        change.tag_ids = [i for i in (parse_id(v) for v in form.getlist("tags")) if i is not None]
    if "keywords" in form:
        change.keywords = [word for word in (form.get("keywords") or "").split(",")]
    return change


def consent_fields(form: Any) -> dict[str, Any]:
    """The consent form as keyword arguments for workflow.record_consent."""
    raw = (form.get("given_on") or "").strip()
    try:
        given_on = date.fromisoformat(raw)
    except ValueError:
        raise Refusal("consent_date", "Bitte geben Sie das Datum der Einwilligung an (z. B. 2024-06-01).",
                      "Please give the date of the consent (e.g. 2024-06-01).", status=422) from None
    return {
        "person": form.get("person") or "",
        "given_on": given_on,
        "scopes": [scope for scope in ConsentScope if form.get(f"scope_{scope.value}")],
        "by_guardian": bool(form.get("by_guardian")),
        "reference": form.get("reference") or "",
    }
