from pathlib import Path

import pytest

from archive.settings import SettingsError, load_settings, secret_key


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings(environ={})
    assert settings["STORAGE"] == "local"
    assert settings["QUEUE"] == "sqlite"
    assert settings["DATABASE_URL"].startswith("sqlite:///")
    assert settings["LOCAL_STORE_DIR"] == str(Path(settings["UPLOAD_DIR"]) / "store")
    assert Path(settings["INDEX_DIR"]).name == "index"


def test_environment_overrides_with_types() -> None:
    settings = load_settings(environ={
        "ARCHIVE_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/brucken",
        "ARCHIVE_STORAGE": "s3",
        "ARCHIVE_S3_ENDPOINT": "http://127.0.0.1:7480",
        "ARCHIVE_MAX_UPLOAD_BYTES": "1234",
        "ARCHIVE_S3_READ_TIMEOUT": "2.5",
    })
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@127.0.0.1/brucken"
    assert settings["STORAGE"] == "s3"
    assert settings["MAX_UPLOAD_BYTES"] == 1234
    assert settings["S3_READ_TIMEOUT"] == 2.5


def test_bad_values_are_named() -> None:
    with pytest.raises(SettingsError, match="ARCHIVE_MAX_PIXELS"):
        load_settings(environ={"ARCHIVE_MAX_PIXELS": "lots"})
    with pytest.raises(SettingsError, match="STORAGE"):
        load_settings(environ={"ARCHIVE_STORAGE": "ftp"})


def test_config_file_layer(tmp_path: Path) -> None:
    extra = tmp_path / "site.py"
    extra.write_text("MAX_PIXELS = 42\nSESSION_COOKIE_SECURE = True\nlower_case = 1\n")
    settings = load_settings(environ={"ARCHIVE_CONFIG": str(extra), "ARCHIVE_JPEG_QUALITY": "70"})
    assert settings["MAX_PIXELS"] == 42
    assert settings["JPEG_QUALITY"] == 70
    assert settings["SESSION_COOKIE_SECURE"] is True  # Flask's own settings may be set there too
    assert "lower_case" not in settings


def test_secret_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = load_settings({"INSTANCE_DIR": str(tmp_path)}, environ={})
    first = secret_key(settings)
    assert len(first) == 64
    assert secret_key(settings) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_importing_the_package_does_nothing(tmp_path: Path) -> None:
    """No folder, file, database, hash or connection is made by an import: only create_app does work."""
    import os
    import subprocess
    import sys
    import time

    modules = ["archive", "archive.cli", "archive.models", "archive.ingest", "archive.auth", "archive.media",
               "archive.metadata", "archive.storage", "archive.processing", "archive.jobs", "archive.views.upload"]
    code = f"import time; t = time.perf_counter(); import {', '.join(modules)}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
    folders = ("INSTANCE_DIR", "UPLOAD_DIR", "INDEX_DIR")
    env.update({f"ARCHIVE_{name}": str(tmp_path / name.lower()) for name in folders})
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True)
    assert list(tmp_path.iterdir()) == []
    assert time.perf_counter() - started < 10
    assert float(out.stdout) < 5


def test_a_site_file_wins_over_our_flask_defaults(tmp_path: Path) -> None:
    import os

    from archive import create_app

    site = tmp_path / "site.py"
    site.write_text("SESSION_COOKIE_SAMESITE = 'Strict'\nWTF_CSRF_TIME_LIMIT = 3600\n")
    old = os.environ.get("ARCHIVE_CONFIG")
    os.environ["ARCHIVE_CONFIG"] = str(site)
    try:
        app = create_app({"INSTANCE_DIR": str(tmp_path / "i"), "UPLOAD_DIR": str(tmp_path / "u"),
                          "INDEX_DIR": str(tmp_path / "x")})
    finally:
        os.environ.pop("ARCHIVE_CONFIG") if old is None else os.environ.__setitem__("ARCHIVE_CONFIG", old)
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Strict"
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 3600
    assert create_app({"INSTANCE_DIR": str(tmp_path / "i"), "UPLOAD_DIR": str(tmp_path / "u"),
                       "INDEX_DIR": str(tmp_path / "x")}).config["SESSION_COOKIE_SAMESITE"] == "Lax"
