"""Write the operator guide's table of every setting (docs/settings.md) from config.py.

    .venv/bin/python tools/settings_doc.py > docs/settings.md    # write the table again after changing config.py
    .venv/bin/python tools/settings_doc.py --check               # exit 1 when docs/settings.md is out of date

config.py stays the one place where a setting is declared; this page is derived from it, and tests/test_docs.py
fails when the two differ. The section rows come from the ``# --- section ---`` comments in config.py.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.py"
TARGET = ROOT / "docs" / "settings.md"
COMMAND = "python tools/settings_doc.py > docs/settings.md"
ENV_PREFIX = "ARCHIVE_"

HEADER = f"""\
# Every setting

<!-- Generated from config.py by tools/settings_doc.py. Do not edit by hand: run `{COMMAND}`. -->

Each setting has its default in [`config.py`](../config.py). The archive reads them in layers, each one
overriding the one before:

1. the defaults below;
2. a Python file named in `ARCHIVE_CONFIG` (upper-case names, e.g. `JOB_RETRIES = 6`); it may also set Flask's
   own settings, see the end of this page;
3. environment variables `ARCHIVE_<NAME>` (in the services: `/etc/brucken/brucken.env`, see
   [install.md](install.md)). Numbers and `true`/`false` are read as such; a value that does not fit stops the
   start with the setting's name.

Empty paths are derived when the app starts: `LOCAL_STORE_DIR` is `UPLOAD_DIR/store`, the staging folder
(uploads being received, unfinished chunked uploads) is always `UPLOAD_DIR/staging`, `QUEUE_PATH` is
`INSTANCE_DIR/jobs.sqlite` and the SQLite database is `INSTANCE_DIR/brucken.sqlite`. Paths shown relative
are inside the checkout (`/opt/brucken` in [install.md](install.md)).
"""

FOOTER = """
## Flask's own settings (only in the `ARCHIVE_CONFIG` file)

These are not `ARCHIVE_*` variables; set them in the site file (example:
[examples/site.py](examples/site.py)):

| Setting | What it does |
|---|---|
| `SESSION_COOKIE_SECURE = True` | Behind TLS: the session cookie is only sent over HTTPS and named `__Host-session`. |
| `TRUSTED_HOSTS = ["archiv.example.org"]` | Refuse requests for any other host name (400). List every name \
people, the load balancer's probes and Prometheus use. |
"""

_SECTION = re.compile(r"^\s*#\s*-{3,}\s*(?P<section>[^-].*?)\s*-{3,}\s*$|Setting\(\s*\"(?P<name>[A-Z0-9_]+)\"", re.M)


def sections(source: str) -> dict[str, str]:
    """Each setting's section title, from the ``# --- title ---`` comment above it in config.py."""
    found: dict[str, str] = {}
    current = ""
    for match in _SECTION.finditer(source):
        if match.group("section"):
            current = match.group("section")
        else:
            found[match.group("name")] = current
    return found


def _size(value: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= factor and value % factor == 0:
            return f"{value // factor} {unit}"
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= factor and value % factor == 0:
            return f"{value // factor} {unit}"
    return ""


def _relative(path: str) -> str:
    """Paths inside the checkout are shown relative to it: the page must not depend on where it was made."""
    try:
        return Path(path).relative_to(ROOT).as_posix() or "."
    except ValueError:
        return path


def show_default(name: str, value: Any) -> str:
    """The default as an operator would write it in the environment file, with a readable size."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        readable = ""
        if "BYTES" in name or "THRESHOLD" in name:
            readable = _size(value)
        elif "PIXELS" in name and value % 10**6 == 0:
            readable = f"{value // 10**6} megapixels"
        return f"`{value}`" + (f" ({readable})" if readable else "")
    if isinstance(value, float):
        return f"`{value:g}`"
    if value == "":
        return "*(empty)*"
    if isinstance(value, str) and Path(value).is_absolute():
        return f"`{_relative(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(settings: Iterable[Any], source: str) -> str:
    """The whole Markdown page for these settings; ``source`` is config.py's text (for the sections)."""
    titles = sections(source)
    lines = [HEADER, "| Setting | Environment variable | Default | What it does |", "|---|---|---|---|"]
    current = None
    for setting in settings:
        section = titles.get(setting.name, "")
        if section and section != current:
            lines.append(f"| **{_cell(section.capitalize())}** | | | |")
        current = section
        default = show_default(setting.name, setting.default)
        lines.append(f"| `{setting.name}` | `{ENV_PREFIX}{setting.name}` | {default} | {_cell(setting.help)} |")
    return "\n".join(lines) + "\n" + FOOTER


def current_page() -> str:
    """The page as config.py makes it now."""
    # Loaded from its file under a name of its own, as archive.settings does: no clash with another "config".
    spec = importlib.util.spec_from_file_location("brucken_config_for_docs", CONFIG)
    assert spec is not None and spec.loader is not None
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    return render(config.SETTINGS, CONFIG.read_text(encoding="utf-8"))


def is_current(path: Path = TARGET) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == current_page()


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["--check"]:
        if is_current():
            return 0
        print(f"{TARGET.relative_to(ROOT)} is out of date with config.py; run: {COMMAND}", file=sys.stderr)
        return 1
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(current_page())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
