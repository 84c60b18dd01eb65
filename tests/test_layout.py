"""The shape of the code, guarded: no module over 600 lines and no function over 80 outside the
tests (ruff's C90 and PLR0915, in pyproject.toml, keep branches and statements down), and the
library never imports Streamlit or the runner."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = [
    *ROOT.glob("studio/**/*.py"),
    *ROOT.glob("runner/**/*.py"),
    *ROOT.glob("views/**/*.py"),
    *ROOT.glob("bench/*.py"),
    ROOT / "Home.py",
]
MAX_MODULE, MAX_FUNCTION = 600, 80


def test_no_module_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in CODE
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE
    }
    assert long == {}


def test_no_function_over_80_lines():
    long = {}
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}


def test_the_library_imports_neither_streamlit_nor_the_runner():
    for path in ROOT.glob("studio/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("streamlit", "runner", "views")), (path, name)


def test_the_stores_are_reached_through_their_interfaces():
    """Only studio/stores.py picks the implementations (SQLite today), so that another can be
    added there without touching the engine, the pages, the CLI or the API."""
    own = {"studio/stores.py", "studio/rowstore.py", "studio/runhistory.py"}
    for path in CODE:
        rel = str(path.relative_to(ROOT))
        text = path.read_text("utf-8")
        if rel in own or rel.startswith("bench/"):
            continue
        for made in ("RunHistory(", "EntityWriter(", "SqliteRows(", "read_rows("):
            assert made not in text, f"{rel} makes {made} itself: use studio.stores"
