"""The import graph of the package: layers only import downwards, and modules import no cycle.

Every ``import`` statement of every module counts, wherever it is (module level, inside a function, under
``if TYPE_CHECKING``), read from the source with :mod:`ast`, so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "saesteer"

# layer -> packages it must never import (a lower floor never reaches up)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "saesteer.steer": ("saesteer.index", "saesteer.select", "saesteer.eval", "saesteer.train",
                       "saesteer.cli", "saesteer.quickstart"),
    "saesteer.featureset": ("saesteer.index", "saesteer.select", "saesteer.steer", "saesteer.eval",
                            "saesteer.cli"),
    "saesteer.index": ("saesteer.select", "saesteer.steer", "saesteer.eval", "saesteer.cli", "saesteer.quickstart"),
    "saesteer.select": ("saesteer.eval", "saesteer.cli", "saesteer.quickstart"),
    "saesteer.models": ("saesteer.index", "saesteer.select", "saesteer.steer", "saesteer.eval", "saesteer.cli"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip |= {id(x) for x in ast.walk(child)}
    return skip


def imports(path: Path, module: str, *, runtime_only: bool = False) -> list[tuple[int, str]]:
    """``(line, imported name)`` for every import in ``path`` (``from a import b`` gives ``a.b``)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree) if runtime_only else set()
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def graph(*, runtime_only: bool) -> dict[str, set[str]]:
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for _, name in imports(p, m, runtime_only=runtime_only):
            r = resolve(name)
            if r and r != m:
                edges[m].add(r)
    return edges


def cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(frozenset(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_only_import_downwards(layer):
    bad = []
    for m, p in _modules().items():
        if not _within(m, layer):
            continue
        for line, name in imports(p, m):
            if any(_within(name, f) for f in FORBIDDEN[layer]):
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_import_scan_sees_lazy_and_type_checking_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from saesteer.index.db import IndexDb\n"
        "def f():\n    import saesteer.select.catalog\n    from . import sibling\n"
    )
    names = {n for _, n in imports(src, "saesteer.steer.m")}
    assert {"saesteer.index.db.IndexDb", "saesteer.select.catalog", "saesteer.steer.sibling"} <= names
    runtime = {n for _, n in imports(src, "saesteer.steer.m", runtime_only=True)}
    assert runtime == {"typing.TYPE_CHECKING", "saesteer.select.catalog", "saesteer.steer.sibling"}


def test_no_import_cycles_between_modules():
    """Runtime imports (``if TYPE_CHECKING`` blocks excluded: they never run) form no cycle."""
    found = cycles(graph(runtime_only=True))
    assert not found, f"import cycles: {[sorted(c) for c in found]}"


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset("abc")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_no_typer_or_rich_below_the_cli():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {name}"
           for m, p in _modules().items() if not _within(m, "saesteer.cli")
           for line, name in imports(p, m) if _within(name, "typer") or _within(name, "rich")]
    assert not bad, "\n".join(bad)
