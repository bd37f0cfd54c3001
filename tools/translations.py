"""Keep the English catalogue in step with the German texts in code and templates.

    .venv/bin/python tools/translations.py extract        # templates + code -> messages.pot -> en/messages.po
    .venv/bin/python tools/translations.py fill F.json…   # set English texts from {"German": "English", …}
    .venv/bin/python tools/translations.py missing        # list texts without English (exit 1 if any)
    .venv/bin/python tools/translations.py check F.json FILE…  # texts of these files in neither F.json nor the .po

The message ids are German (see archive/i18n.py). For a plural, the JSON value is [singular, plural].
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from babel.messages import pofile

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "archive" / "translations"
TEMPLATE = FOLDER / "messages.pot"
ENGLISH = FOLDER / "en" / "LC_MESSAGES" / "messages.po"
PYBABEL = [sys.executable, "-m", "babel.messages.frontend", "-q"]


def extract() -> None:
    ENGLISH.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*PYBABEL, "extract", "-F", str(ROOT / "babel.cfg"), "-k", "lazy_gettext", "-k", "_l",
                    "--no-location", "--sort-output", "--project", "Bruecken", "-o", str(TEMPLATE), "."],
                   check=True, cwd=ROOT)
    if ENGLISH.exists():
        subprocess.run([*PYBABEL, "update", "--no-fuzzy-matching", "--ignore-obsolete", "-i", str(TEMPLATE),
                        "-o", str(ENGLISH), "-l", "en"], check=True)
    else:
        subprocess.run([*PYBABEL, "init", "-i", str(TEMPLATE), "-o", str(ENGLISH), "-l", "en"], check=True)


def _read():
    with ENGLISH.open("rb") as handle:
        return pofile.read_po(handle, locale="en")


def _write(catalogue) -> None:  # type: ignore[no-untyped-def]
    with ENGLISH.open("wb") as handle:
        pofile.write_po(handle, catalogue, width=120, omit_header=False, no_location=True, sort_output=True)


def fill(paths: list[str]) -> None:
    catalogue = _read()
    unknown = []
    for path in paths:
        for german, english in json.loads(Path(path).read_text(encoding="utf-8")).items():
            message = catalogue.get(german)
            if message is None:
                unknown.append(german)
                continue
            message.string = tuple(english) if isinstance(message.id, tuple | list) else english
            message.flags.discard("fuzzy")
    _write(catalogue)
    for german in unknown:
        print(f"not in the templates or code (left out): {german!r}")


def missing() -> int:
    gaps = [message.id for message in _read() if message.id and (not message.string or (
        isinstance(message.string, tuple) and not all(message.string)) or message.fuzzy)]
    for german in gaps:
        print(json.dumps(german, ensure_ascii=False))
    return 1 if gaps else 0


def check(json_path: str, files: list[str]) -> int:
    """Read-only: which texts of FILES have English neither in JSON_PATH nor in the catalogue (for work in progress)."""
    from babel.messages.extract import extract_from_file

    known = {message.id for message in _read() if message.string}
    if Path(json_path).exists():
        known |= set(json.loads(Path(json_path).read_text(encoding="utf-8")))
    gaps = 0
    for name in files:
        method = "jinja2" if name.endswith(".html") else "python"
        for _line, message, _comments, _context in extract_from_file(
                method, name, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                                        "_l": None, "pgettext": ((1, "c"), 2)}):
            german = message[0] if isinstance(message, tuple) else message
            if german not in known:
                gaps += 1
                print(f"{name}: {json.dumps(german, ensure_ascii=False)}")
    return 1 if gaps else 0


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["missing"]
    if command == "extract":
        extract()
    elif command == "fill":
        fill(rest)
    elif command == "check":
        sys.exit(check(rest[0], rest[1:]))
    else:
        sys.exit(missing())
