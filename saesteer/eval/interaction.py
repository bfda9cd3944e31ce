"""Two vectors at once: does each still do its job when the other is applied too?

Four generations from the same prompts and seeds: unsteered, ``A`` alone, ``B`` alone, ``A + B``
(both hooks active; saesteer composes them in order). Each vector's own target metric is measured in all
four, plus the continuations' perplexity (on their own, after BOS) under the unsteered model as a ratio
to the unsteered continuations. The table has one row per metric; ``with other - alone`` is the change of
a vector's own metric when the other vector is added (negative: the other vector gets in its way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.steer.generate import Backend, Generation, GenerationConfig
    from saesteer.steer.vector import SteeringVector

Metric = Callable[[Sequence[str], Sequence[str]], float]


@dataclass(frozen=True)
class Arm:
    """One vector in the pair: a name for the table, the vector, its strength and its target metric."""

    name: str
    vector: SteeringVector
    strength: float
    metric: Metric


def _ppl(backend: Backend, gens: Sequence[Generation]) -> float:
    scored = backend.continuation_nll([""] * len(gens), [list(g.token_ids) for g in gens])
    nll, n = sum(s for s, _ in scored), sum(k for _, k in scored)
    return math.exp(nll / n) if n else float("nan")


def interaction(
    backend: Backend, prompts: Sequence[str], a: Arm, b: Arm, cfg: GenerationConfig
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """``(table, continuations)``: the table described in the module docstring, and the texts of each of
    the four runs (keys ``unsteered``, ``A``, ``B``, ``A + B`` with the arms' names)."""
    import pandas as pd

    runs: dict[str, Any] = {
        "unsteered": None,
        a.name: (a.vector, a.strength),
        b.name: (b.vector, b.strength),
        f"{a.name} + {b.name}": [(a.vector, a.strength), (b.vector, b.strength)],
    }
    gens = {name: backend.generate(list(prompts), cfg, steer=steer) for name, steer in runs.items()}
    texts = {name: [g.text for g in gs] for name, gs in gens.items()}
    ppl = {name: _ppl(backend, gs) for name, gs in gens.items()}
    rows = []
    for arm in (a, b):
        vals = {name: float(arm.metric(prompts, t)) for name, t in texts.items()}
        both = vals[f"{a.name} + {b.name}"]
        rows.append({"metric": f"{arm.name} target", **vals, "with other - alone": both - vals[arm.name]})
    base = ppl["unsteered"]
    rows.append({"metric": "ppl ratio", **{k: v / base if base else math.nan for k, v in ppl.items()},
                 "with other - alone": math.nan})
    return pd.DataFrame(rows), texts
