"""Choose the hook of the default SAE by measurement: train one short run per candidate hook on the same
cached text, then compare how language-selective their latents are on the bundled corpus' held-out
sentences (and, as a tie-break, how well they reconstruct held-out text).

The measure, per language: the latent maximising ``freq(lang) - max freq(other language)``, where ``freq``
is the share of that language's tokens the latent fires on (:func:`~saesteer.train.quality.language_selectivity`).
A language counts as *clearly* covered when that difference reaches
:data:`~saesteer.train.quality.SELECTIVE_THRESHOLD`. The winner covers the most languages clearly, then has
the higher mean selectivity, then the higher explained variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from saesteer.errors import SaesteerError
from saesteer.train.quality import (
    LanguageSelectivity,
    language_selectivity,
    latent_frequencies,
    reconstruction_metrics,
)

if TYPE_CHECKING:
    import numpy as np
    from sae_lens import SAE


@dataclass
class HookCandidate:
    """One candidate hook's short run and its measured selectivity."""

    hook: str
    training_tokens: int
    explained_variance: float  # on the held-out text (all languages together)
    l0: float
    selectivity: list[LanguageSelectivity]

    @property
    def n_clear(self) -> int:
        return sum(s.clear for s in self.selectivity)

    @property
    def mean_score(self) -> float:
        return sum(s.score for s in self.selectivity) / max(1, len(self.selectivity))

    def rank_key(self) -> tuple[int, float, float]:
        return (self.n_clear, round(self.mean_score, 3), self.explained_variance)


def evaluate_candidate(
    hook: str,
    sae: SAE,
    training_tokens: int,
    *,
    langs: Sequence[str],
    probe_acts: np.ndarray,
    probe_mask: np.ndarray,
    probe_langs: Sequence[str],
    heldout_acts: np.ndarray,
    heldout_mask: np.ndarray,
) -> HookCandidate:
    """Measure one candidate: selectivity on the probe sentences, EV and L0 on the held-out text.

    probe_acts / heldout_acts: ``[n_seq, ctx, d]`` at ``hook``; the masks ``[n_seq, ctx]`` drop special tokens.
    """
    freq, _ = latent_frequencies(sae, probe_acts, probe_mask, probe_langs, langs)
    rec = reconstruction_metrics(sae, heldout_acts, heldout_mask)
    return HookCandidate(
        hook, training_tokens, rec.explained_variance, rec.l0, language_selectivity(freq, langs)
    )


def choose_hook(candidates: Sequence[HookCandidate]) -> HookCandidate:
    """The candidate with the most clearly selective languages (ties: mean selectivity, then EV)."""
    if not candidates:
        raise SaesteerError("no candidate hooks to compare")
    return max(candidates, key=lambda c: c.rank_key())
