"""Every case of the reliability catalogue has tests, and every test it names exists."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.catalogue import CASES

TESTS = Path(__file__).resolve().parent


@cache
def _functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))


def test_every_case_of_the_catalogue_has_a_test() -> None:
    assert sorted(CASES) == list(range(1, 56))
    assert [number for number, case in CASES.items() if not case.tests] == []


def test_every_named_test_exists() -> None:
    missing = []
    for number, case in sorted(CASES.items()):
        for test in case.tests:
            file, _, function = test.partition("::")
            path = TESTS / file
            if not function.startswith("test_") or not path.is_file() or function not in _functions(path):
                missing.append(f"case {number}: {test}")
    assert missing == []
