"""Import finished conditions from index exports instead of recomputing them.

What a build stores for a condition depends only on the model and SAE weights, the hook and the stat
settings (together: the build id) and on the condition's data (its source hash). A Parquet export
(``saesteer index export``) that holds the same build id and a condition with the same source hash, built
unsharded, therefore holds exactly the rows that building the condition would write; importing it takes
seconds instead of a pass of the model over the corpus. The logit-lens table of the build (which depends
only on the model and SAE) comes with it.

The package ships such an export for the default model + default SAE: the bundled corpus (train split,
12 languages) and the uniform random-token baseline of ``saesteer index build --bundled --random uniform``
and ``saesteer quickstart``, in ``saesteer/prebuilt/index/``. :func:`saesteer.index.build.build_index`
uses it unless told not to (``--rebuild``); with another model, SAE, setting or corpus the build ids or
source hashes differ and nothing is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from saesteer.paths import package_data

log = logging.getLogger(__name__)
SHIPPED_DIR = ("prebuilt", "index")


def shipped_exports() -> list[Path]:
    """The index exports shipped in the package (empty when none is installed)."""
    path = package_data(*SHIPPED_DIR)
    return [path] if (path / "manifest.json").is_file() else []


def reusable(exports: Sequence[Path], build_id: str, hashes: Mapping[str, str]) -> dict[str, Path]:
    """``{condition: export}`` for the conditions of ``hashes`` that an export holds for ``build_id``,
    unsharded and with the same source hash (the first export that has it wins)."""
    from saesteer.index.shards import read_manifest

    out: dict[str, Path] = {}
    for path in exports:
        for c in read_manifest(path)["conditions"]:
            label = str(c["condition"])
            if (c["build_id"] == build_id and int(c["shard"]["count"]) == 1
                    and hashes.get(label) == c["source_hash"]):
                out.setdefault(label, path)
    return out


def import_conditions(
    db_path: Path,
    build_id: str,
    hashes: Mapping[str, str],
    exports: Sequence[Path],
    *,
    skip: Collection[str] = (),
    wait_s: float = 30.0,
) -> list[str]:
    """Import the reusable conditions (see :func:`reusable`) not in ``skip`` into ``db_path``; returns their
    labels. Each condition is one transaction, like a built one."""
    from saesteer.index.shards import merge_shards

    plan = {label: p for label, p in reusable(exports, build_id, hashes).items() if label not in skip}
    imported: list[str] = []
    for path in dict.fromkeys(plan.values()):
        labels = [lb for lb, p in plan.items() if p == path]
        res = merge_shards([path], db_path, only={(build_id, lb) for lb in labels}, wait_s=wait_s)
        imported += [cond for _, cond in res.written]
        log.info("imported %d condition(s) of build %s from %s", len(res.written), build_id, path)
    return imported
