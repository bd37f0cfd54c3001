"""The operator guide (docs/) stays true: the settings page is what config.py makes, every setting is on it,
every `brucken` command and option it names exists, and every relative link leads to a file."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest
from flask.cli import ScriptInfo

from config import SETTINGS
from tests.conftest import settings_for

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TOOL = ROOT / "tools" / "settings_doc.py"


def settings_doc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_doc", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guide_files() -> list[Path]:
    """The pages and the example files (units, nginx, the wrapper) of the guide."""
    return sorted(DOCS.glob("*.md")) + sorted(p for p in (DOCS / "examples").iterdir() if p.is_file())


def test_the_settings_page_is_what_config_py_makes_now() -> None:
    page = (DOCS / "settings.md").read_text(encoding="utf-8")
    assert page == settings_doc().current_page(), (
        "docs/settings.md is out of date with config.py: run `python tools/settings_doc.py > docs/settings.md`")


def test_every_setting_has_its_row_on_the_settings_page() -> None:
    page = (DOCS / "settings.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \| `ARCHIVE_\1` \|", page, re.M))
    missing = [s.name for s in SETTINGS if s.name not in rows]
    assert not missing, f"not in docs/settings.md: {missing}; run `python tools/settings_doc.py > docs/settings.md`"


def test_check_mode_tells_an_outdated_page_from_a_current_one(tmp_path: Path) -> None:
    tool = settings_doc()
    stale = tmp_path / "settings.md"
    stale.write_text(tool.current_page().replace("`ARCHIVE_JOB_RETRIES`", "`ARCHIVE_JOB_RETRY`"), encoding="utf-8")
    assert not tool.is_current(stale)
    assert not tool.is_current(tmp_path / "absent.md")
    result = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_defaults_are_shown_as_an_operator_writes_them() -> None:
    show = settings_doc().show_default
    assert show("MAX_UPLOAD_BYTES", 100_000_000) == "`100000000` (100 MB)"
    assert show("MAX_REQUEST_BYTES", 2 * 1024**3) == "`2147483648` (2 GiB)"
    assert show("S3_REDIRECT_DOWNLOADS", True) == "`true`"
    assert show("INSTANCE_DIR", str(ROOT / "instance")) == "`instance`"
    assert show("SECRET_KEY", "") == "*(empty)*"


# --- commands named in the guide ---------------------------------------------------------------------------------

# `brucken` followed by a word, in code only; the lookahead lets "-u brucken brucken init" find "init" too.
_COMMAND = re.compile(r"(?<![\w.@-])brucken(?=[ \t]+([a-z][a-z0-9-]*)(?![\w/.]))")
_CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.S)
_NOT_COMMANDS = {"brucken"}  # the system user's name, as in "chown brucken:brucken" or "-u brucken brucken init"


def code_of(path: Path) -> Iterator[str]:
    """The lines of code in a Markdown page (fenced blocks and inline code), or of an example file; comment
    lines left out (they are prose)."""
    text = path.read_text(encoding="utf-8")
    blocks = [text] if path.suffix != ".md" else [m.group(1) or m.group(2) for m in _CODE.finditer(text)]
    for block in blocks:
        yield from (line for line in block.splitlines() if not line.lstrip().startswith("#"))


def named_commands(line: str) -> Iterator[list[str]]:
    """Each `brucken ...` invocation in a line of code, as its words up to the end of that shell command."""
    for match in _COMMAND.finditer(line):
        if match.group(1) in _NOT_COMMANDS:
            continue
        rest = re.split(r"\s(?:#|&&|\|\|?|;)|[;)'\"]", line[match.end():])[0]
        try:
            yield shlex.split(rest)
        except ValueError:
            yield rest.split()


@pytest.fixture(scope="module")
def cli_commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, click.Command]:
    """The real command group, as `brucken --help` lists it (our commands, and Flask-Migrate's `db`)."""
    from archive import create_app
    from archive.cli import main

    app = create_app(settings_for(tmp_path_factory.mktemp("cli")))
    context = click.Context(main, obj=ScriptInfo(create_app=lambda: app))
    return {name: main.get_command(context, name) for name in main.list_commands(context)}


def problems_with(words: list[str], commands: dict[str, click.Command]) -> list[str]:
    command = commands.get(words[0])
    if command is None:
        return [f"no command 'brucken {words[0]}'"]
    path = [words[0]]
    for word in words[1:]:
        if isinstance(command, click.Group) and not word.startswith("-"):
            sub = command.commands.get(word)
            if sub is None:
                return [f"no command 'brucken {' '.join([*path, word])}'"]
            command, path = sub, [*path, word]
        elif word.startswith("--"):
            known = {opt for param in command.params for opt in param.opts + param.secondary_opts} | {"--help"}
            if word.split("=")[0] not in known:
                return [f"'brucken {' '.join(path)}' has no option {word.split('=')[0]}"]
    return []


def test_every_brucken_command_in_the_guide_exists(cli_commands: dict[str, click.Command]) -> None:
    wrong = []
    for path in guide_files():
        for line in code_of(path):
            for words in named_commands(line):
                wrong += [f"{path.relative_to(ROOT)}: {problem}  ({line.strip()})"
                          for problem in problems_with(words, cli_commands)]
    assert not wrong, "the guide names commands the CLI lacks:\n" + "\n".join(wrong)


def test_the_command_finder_finds_commands_and_their_options(cli_commands: dict[str, click.Command]) -> None:
    line = "runuser -u brucken -- /opt/brucken/.venv/bin/brucken backup /b --with-objects && brucken reindx"
    assert list(named_commands(line)) == [["backup", "/b", "--with-objects"], ["reindx"]]
    assert problems_with(["reindx"], cli_commands) == ["no command 'brucken reindx'"]
    assert problems_with(["backup", "/b", "--with-object"], cli_commands) == [
        "'brucken backup' has no option --with-object"]
    assert problems_with(["token", "create", "anna", "script"], cli_commands) == []
    assert problems_with(["db", "upgrde"], cli_commands) == ["no command 'brucken db upgrde'"]
    assert list(named_commands("chown -R brucken:brucken /var/lib/brucken; User=brucken")) == []
    assert list(named_commands("install -g brucken docs/examples/brucken.env /etc/brucken/")) == []


# --- links ---------------------------------------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https:, mailto:, and anchors within the page
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    return broken


def test_every_relative_link_in_the_guide_leads_to_a_file() -> None:
    broken = {str(p.relative_to(ROOT)): links for p in [*DOCS.glob("*.md"), ROOT / "README.md"]
              if (links := broken_links(p))}
    assert not broken, f"links to missing files: {broken}"


def test_a_link_to_a_missing_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[a](there.md) [b](there.md#part) [c](gone.md) [d](https://example.org/x) [e](#top)",
                    encoding="utf-8")
    assert broken_links(page) == ["gone.md"]


def test_every_archive_variable_in_the_guide_is_a_setting() -> None:
    known = {f"ARCHIVE_{s.name}" for s in SETTINGS} | {"ARCHIVE_CONFIG"}
    unknown = {f"{p.relative_to(ROOT)}: {name}" for p in guide_files()
               for name in re.findall(r"\bARCHIVE_[A-Z0-9_]*[A-Z0-9]", p.read_text(encoding="utf-8"))
               if name not in known}
    assert not unknown, f"the guide names settings config.py lacks: {sorted(unknown)}"
