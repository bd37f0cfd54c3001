"""Reads the settings in layers: the defaults in config.py, a file named by ARCHIVE_CONFIG,
ARCHIVE_* environment variables, then explicit overrides (tests). Derives the empty paths."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

ENV_PREFIX = "ARCHIVE_"
CONFIG_FILE = Path(__file__).resolve().parent.parent / "config.py"


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("brucken_config", path)
    if spec is None or spec.loader is None:
        raise SettingsError(f"cannot read settings file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _coerce(name: str, raw: str, default: Any) -> Any:
    """Environment values are strings: give them the type of the default."""
    try:
        if isinstance(default, bool):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as error:
        raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} is not a valid {type(default).__name__}") from error
    return raw


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    defaults = _load_module(CONFIG_FILE)
    settings: dict[str, Any] = {s.name: s.default for s in defaults.SETTINGS}
    extra_file = environ.get(f"{ENV_PREFIX}CONFIG")
    if extra_file:
        # A site file may also set Flask's and its extensions' own settings (SESSION_COOKIE_SECURE, ...).
        extra = _load_module(Path(extra_file))
        settings.update({k: getattr(extra, k) for k in dir(extra) if k.isupper() and not k.startswith("_")})
    for name, default in list(settings.items()):
        raw = environ.get(ENV_PREFIX + name)
        if raw is not None:
            settings[name] = _coerce(name, raw, default)
    settings.update(overrides or {})
    return _derive(settings)


def _derive(settings: dict[str, Any]) -> dict[str, Any]:
    instance = Path(settings["INSTANCE_DIR"])
    upload = Path(settings["UPLOAD_DIR"])
    settings["STAGING_DIR"] = str(upload / "staging")
    if not settings["LOCAL_STORE_DIR"]:
        settings["LOCAL_STORE_DIR"] = str(upload / "store")
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'brucken.sqlite'}"
    if not settings["QUEUE_PATH"]:
        settings["QUEUE_PATH"] = str(instance / "jobs.sqlite")
    if settings["STORAGE"] not in {"local", "s3"}:
        raise SettingsError(f"{ENV_PREFIX}STORAGE must be 'local' or 's3', not {settings['STORAGE']!r}")
    if settings["QUEUE"] not in {"sqlite", "redis", "immediate"}:
        raise SettingsError(f"{ENV_PREFIX}QUEUE must be 'sqlite', 'redis' or 'immediate'")
    if settings["SEARCH_INDEX_WRITER"] not in {"worker", "follower"}:
        raise SettingsError(f"{ENV_PREFIX}SEARCH_INDEX_WRITER must be 'worker' or 'follower'")
    return settings


def ensure_folders(settings: Mapping[str, Any]) -> None:
    keys = ["INSTANCE_DIR", "UPLOAD_DIR", "STAGING_DIR", "INDEX_DIR"]
    if settings["STORAGE"] == "local":
        keys.append("LOCAL_STORE_DIR")
    for key in keys:
        try:
            Path(settings[key]).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            what = "Der Fotospeicher ist nicht erreichbar / the photo storage cannot be used. " \
                if key == "LOCAL_STORE_DIR" else ""
            raise SettingsError(
                f"{what}Der Ordner / the folder {ENV_PREFIX}{key}={settings[key]} lässt sich nicht anlegen / "
                f"cannot be created: {error.strerror}"
            ) from error


# Flask's advice: a long random value. Anything shorter than this was typed by a person ("dev", "geheim", ...)
# and can be guessed offline from one session cookie; with it, anyone can sign themselves an admin's session.
MIN_SECRET_KEY_LENGTH = 32


def secret_key(settings: Mapping[str, Any]) -> str:
    """The configured key, or one made once and kept (0600) so sessions survive restarts. A configured key that
    is too short is refused at start (tests, TESTING=True, may use a short one)."""
    if settings["SECRET_KEY"]:
        key = str(settings["SECRET_KEY"])
        if len(key) < MIN_SECRET_KEY_LENGTH and not settings.get("TESTING"):
            raise SettingsError(
                f"{ENV_PREFIX}SECRET_KEY ist zu kurz ({len(key)} Zeichen, mindestens {MIN_SECRET_KEY_LENGTH}) / "
                f"is too short ({len(key)} characters, at least {MIN_SECRET_KEY_LENGTH}). Leer lassen, dann wird "
                f"ein zufälliger Schlüssel erzeugt und in {ENV_PREFIX}INSTANCE_DIR aufbewahrt / leave it empty and a "
                "random key is made and kept in INSTANCE_DIR, or make one with: "
                "python -c 'import secrets; print(secrets.token_hex(32))'")
        return key
    path = Path(settings["INSTANCE_DIR"]) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made earlier, or by a sibling worker process just now
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()
