"""Who may do what: the roles, the photo states and the rules the access matrix (tests/test_access_matrix.py)
checks every route against. Areas of the app add their routes in a ``tests/policy_<area>.py`` module with
``POLICY`` ((endpoint, method) -> rule), optional ``BODIES`` (endpoint -> form sent with a POST) and optional
``values(users, photos) -> dict`` (URL parameters of objects it makes, called inside the app context)."""

from __future__ import annotations

from collections.abc import Callable

from archive.models import PhotoStatus

ANON, OWN, OTHER, CURATOR, ADMIN = "visitor", "member", "other_member", "curator", "admin"
ROLES = (ANON, OWN, OTHER, CURATOR, ADMIN)
USERNAMES = {OWN: "mia", OTHER: "omar", CURATOR: "cora", ADMIN: "ada"}
STATES = tuple(PhotoStatus)
LOGIN = "login"  # expected: a redirect to the login page
OK = "ok"  # expected: allowed; the answer is the action's own (a page, a redirect, or a refusal of the input)
ALLOWED = {200, 201, 302, 303, 400, 409, 410, 422}

Rule = Callable[[str, PhotoStatus | None], int | str]


def _staff(role: str) -> bool:
    return role in (CURATOR, ADMIN)


def public(role: str, state: PhotoStatus | None) -> int | str:
    return 200


def logged_in(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else 200


def logged_in_may(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else OK


def staff_page(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (200 if _staff(role) else 403)


def staff_may(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (OK if _staff(role) else 403)


def admin_page(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (200 if role == ADMIN else 403)


def admin_may(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (OK if role == ADMIN else 403)


def gone(role: str, state: PhotoStatus | None) -> int | str:
    return 404  # an unknown invitation or reset link


def see_photo(role: str, state: PhotoStatus | None) -> int | str:
    """Published photos for everyone; the others only for their association, curators and admins (404, not
    403, for everyone else: their existence does not leak)."""
    return 200 if state == PhotoStatus.PUBLISHED or role in (OWN, CURATOR, ADMIN) else 404


def original(role: str, state: PhotoStatus | None) -> int | str:
    return 200 if role in (OWN, CURATOR, ADMIN) else 404


def edit_page(role: str, state: PhotoStatus | None) -> int | str:
    if role == ANON:
        return LOGIN
    if role == OTHER:
        return 404
    return 403 if role == OWN and state == PhotoStatus.PUBLISHED else 200


def edit_photo(role: str, state: PhotoStatus | None) -> int | str:
    answer = edit_page(role, state)
    return OK if answer == 200 else answer


def manage_photo(role: str, state: PhotoStatus | None) -> int | str:
    """Consent and the removal of failed files: the owning association, curators and admins."""
    return LOGIN if role == ANON else (404 if role == OTHER else OK)


def staff_on_photo(role: str, state: PhotoStatus | None) -> int | str:
    """Lifecycle and owner: curators and admins; the owning association sees the photo but may not."""
    if role == ANON:
        return LOGIN
    if role == OTHER:
        return 404
    return 403 if role == OWN else OK


def staff_photo_page(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (200 if _staff(role) else 403)


def own_token(role: str, state: PhotoStatus | None) -> int | str:
    """The admin's token or login session: only the admin ends it from their account page."""
    return LOGIN if role == ANON else (OK if role == ADMIN else 404)
