"""Committed reports name files relative to the repository or the output folder, never with the absolute
paths of the machine they were made on; the writers use saesteer.paths.portable_path / portable_command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from saesteer.paths import portable_command, portable_path, repo_root

ROOT = Path(__file__).resolve().parents[1]
MACHINE = re.compile(r"(?<![\w.~])/(work|tmp|root|home)/")
REPORTS = [
    *sorted((ROOT / "docs" / "results").rglob("*.md")),
    *sorted((ROOT / "docs" / "results").rglob("*.html")),
    *sorted((ROOT / "docs" / "results").rglob("*.json")),
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "saesteer" / "default_sae" / "REPORT.md",
    ROOT / "saesteer" / "default_sae" / "report.json",
]


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_reports_have_no_machine_paths(path):
    hits = [m.group(0) for m in MACHINE.finditer(path.read_text(encoding="utf-8"))]
    assert not hits, f"{path.relative_to(ROOT)} names absolute machine paths: {hits[:5]}"


def test_portable_path(tmp_path):
    assert repo_root() == ROOT
    assert portable_path(ROOT / "features_db" / "index.duckdb") == "features_db/index.duckdb"
    out = tmp_path / "out"
    assert portable_path(out / "vectors" / "fr.gguf", out) == "vectors/fr.gguf"
    assert portable_path(out, out) == "."
    assert portable_path(Path.home() / ".cache" / "x") == "~/.cache/x"
    assert portable_path("/nonexistent-root/data/train_cache") == ".../train_cache"
    assert portable_path("relative/file.txt") == "relative/file.txt"


def test_portable_command():
    cmd = f"saesteer train-sae --text-dir /srv/text --out {ROOT}/saesteer/default_sae --cache=/srv/c --k 64"
    assert portable_command(cmd) == (
        "saesteer train-sae --text-dir .../text --out saesteer/default_sae --cache=.../c --k 64"
    )
    assert not MACHINE.search(portable_command("x --db /work/main/features_db/i.duckdb /tmp/a"))
