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
    extra.write_text("MAX_PIXELS = 42\nNOT_A_SETTING = 1\n")
    settings = load_settings(environ={"ARCHIVE_CONFIG": str(extra), "ARCHIVE_JPEG_QUALITY": "70"})
    assert settings["MAX_PIXELS"] == 42
    assert settings["JPEG_QUALITY"] == 70
    assert "NOT_A_SETTING" not in settings


def test_secret_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = load_settings({"INSTANCE_DIR": str(tmp_path)}, environ={})
    first = secret_key(settings)
    assert len(first) == 64
    assert secret_key(settings) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_importing_the_package_does_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import archive, archive.cli, archive.models, archive.ingest; import os; print(os.listdir('.'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
