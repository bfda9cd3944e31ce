"""One source for each setting: a default is written once (the literal model name only as DEFAULT_MODEL,
each settings dataclass the definition of its CLI flags)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _string_constants(value: str) -> list[str]:
    hits = []
    for p in sorted((ROOT / "saesteer").rglob("*.py")):
        tree = ast.parse(p.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        hits += [f"{p.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                 if isinstance(n, ast.Constant) and n.value == value and id(n) not in docstrings]
    return hits


def test_the_default_model_name_is_written_once():
    assert _string_constants("gemma-3-270m") == ["saesteer/models/loading.py:35"]
