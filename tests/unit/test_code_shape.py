"""The code stays easy to read: no function in `outlast/` over 60 lines, no module over 800 (the
limits DESIGN.md sets). A function that grows past them is split before it lands."""

from __future__ import annotations

import ast
from pathlib import Path

import outlast

PACKAGE = Path(outlast.__file__).parent
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 800


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_no_module_is_longer_than_eight_hundred_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE)} ({n} lines)"
        for path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []
