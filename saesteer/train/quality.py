"""Quality metrics of an SAE on held-out activations: reconstruction, sparsity, feature density, and the
cross-entropy loss recovered when the SAE's reconstruction is spliced into the model.

Special positions (BOS, padding) are excluded everywhere: they are neither reconstructed (the spliced
model keeps the clean BOS residual, whose norm is ~15x that of a text token) nor counted.

Definitions (sums over the evaluated tokens ``x`` of one language, ``x̂`` the reconstruction):

- explained variance ``EV = 1 - Σ‖x - x̂‖² / Σ‖x - mean(x)‖²``;
- normalized MSE ``NMSE = Σ‖x - x̂‖² / Σ‖x‖²``;
- ``L0``: mean number of active latents per token;
- dead share: latents that never fire on the whole held-out set; dense share: latents firing on more than
  :data:`DENSE_THRESHOLD` of its tokens;
- CE loss recovered ``(CE_zero - CE_spliced) / (CE_zero - CE_clean)``, the zero ablation replacing the
  hook's activations by zeros at the same positions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

DENSE_THRESHOLD = 0.10
SELECTIVE_THRESHOLD = 0.30  # a language's best latent must fire this much more often there than anywhere else

Progress = Callable[[str, int, int], None]


@dataclass
class ReconMetrics:
    """Reconstruction and sparsity on one set of tokens; ``fires`` counts tokens per latent ``[d_sae]``."""

    n_tokens: int
    explained_variance: float
    nmse: float
    l0: float
    fires: np.ndarray


def _flat(acts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.asarray(acts).reshape(-1, acts.shape[-1])[np.flatnonzero(np.asarray(mask).reshape(-1))]


def reconstruction_metrics(
    sae: SAE, acts: np.ndarray, mask: np.ndarray, *, batch: int = 2048
) -> ReconMetrics:
    """EV, NMSE, L0 and per-latent firing counts of ``sae`` on ``acts [n, ctx, d]`` where ``mask [n, ctx]``."""
    import numpy as np
    import torch

    x_all = _flat(acts, mask)
    d_sae = int(sae.cfg.d_sae)
    fires = np.zeros(d_sae, dtype=np.int64)
    if len(x_all) == 0:
        return ReconMetrics(0, float("nan"), float("nan"), float("nan"), fires)
    mean = torch.as_tensor(x_all.mean(axis=0, dtype=np.float64), dtype=torch.float64)
    err = tot = sq = l0 = 0.0
    with torch.no_grad():
        for i in range(0, len(x_all), batch):
            x = torch.as_tensor(x_all[i : i + batch], dtype=torch.float32)
            f = sae.encode(x)
            rec = sae.decode(f)
            err += float((x - rec).double().pow(2).sum())
            tot += float((x.double() - mean).pow(2).sum())
            sq += float(x.double().pow(2).sum())
            active = f != 0
            l0 += float(active.sum())
            fires += active.sum(0).numpy()
    n = len(x_all)
    return ReconMetrics(n, 1.0 - err / tot, err / sq, l0 / n, fires)


def latent_frequencies(
    sae: SAE, acts: np.ndarray, mask: np.ndarray, seq_langs: Sequence[str], langs: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(freq [n_langs, d_sae], n_tokens [n_langs])``: how often each latent fires on each language's tokens.

    acts: ``[n_seq, ctx, d]``; mask: ``[n_seq, ctx]``; ``seq_langs[i]`` is the language of sequence ``i``.
    """
    import numpy as np

    freq = np.zeros((len(langs), int(sae.cfg.d_sae)))
    n_tok = np.zeros(len(langs), dtype=np.int64)
    for li, lang in enumerate(langs):
        idx = [i for i, x in enumerate(seq_langs) if x == lang]
        if not idx:
            continue
        m = reconstruction_metrics(sae, np.asarray(acts[idx]), np.asarray(mask)[idx])
        freq[li] = m.fires / max(1, m.n_tokens)
        n_tok[li] = m.n_tokens
    return freq, n_tok


@dataclass(frozen=True)
class LanguageSelectivity:
    """The most language-selective latent of one language."""

    lang: str
    latent: int
    freq_in: float  # share of this language's tokens it fires on
    freq_out: float  # its highest share on any other language
    other_lang: str  # that other language
    score: float  # freq_in - freq_out
    # latents passing the index's selectivity bar (saesteer.select.selective.SelectivityBar, before its
    # random-token filter): >= min_freq of this language's tokens and >= ratio x every other language
    n_selective: int = 0

    @property
    def clear(self) -> bool:
        return self.score >= SELECTIVE_THRESHOLD


def language_selectivity(freq: np.ndarray, langs: Sequence[str]) -> list[LanguageSelectivity]:
    """For each language, the latent maximising ``freq[lang] - max(freq[other languages])``, and how many
    latents pass the index's selectivity bar (``saesteer features selective``, without random tokens).

    freq: ``[n_langs, d_sae]`` from :func:`latent_frequencies`.
    """
    import numpy as np

    from saesteer.select.selective import SelectivityBar

    bar = SelectivityBar()

    out = []
    for li, lang in enumerate(langs):
        others = np.delete(freq, li, axis=0)
        out_max = others.max(axis=0)
        score = freq[li] - out_max
        j = int(np.argmax(score))
        other_idx = [i for i in range(len(langs)) if i != li][int(np.argmax(others[:, j]))]
        passing = (freq[li] > 0) & (freq[li] >= bar.min_freq) & (freq[li] >= bar.ratio * out_max)
        out.append(
            LanguageSelectivity(
                lang,
                j,
                float(freq[li, j]),
                float(out_max[j]),
                langs[other_idx],
                float(score[j]),
                int(passing.sum()),
            )
        )
    return out


@dataclass
class CeLosses:
    """Mean next-token cross-entropy of the clean, spliced and zero-ablated model over the same tokens."""

    n_tokens: int
    clean: float
    spliced: float
    zero: float

    @property
    def recovered(self) -> float:
        denom = self.zero - self.clean
        return float("nan") if denom == 0 else (self.zero - self.spliced) / denom


def ce_losses(
    model: HookedTransformer,
    hook: str,
    tokens: np.ndarray,
    mask: np.ndarray,
    saes: dict[str, SAE],
    *,
    batch_size: int = 4,
    progress: Progress | None = None,
) -> dict[str, CeLosses]:
    """Cross-entropy with each SAE in ``saes`` spliced in at ``hook`` (positions where ``mask`` is True),
    by SAE name (the clean and zero-ablated losses are shared).

    tokens, mask: ``[n_seq, ctx]``. A loss counts where both the input position and the predicted token
    are unmasked.
    """
    import numpy as np
    import torch

    sums = {"clean": 0.0, "zero": 0.0, **{k: 0.0 for k in saes}}
    n = 0
    with torch.no_grad():
        for b0 in range(0, len(tokens), batch_size):
            tok = torch.as_tensor(np.asarray(tokens[b0 : b0 + batch_size]), dtype=torch.long)
            m = torch.as_tensor(np.asarray(mask[b0 : b0 + batch_size]), dtype=torch.bool)
            valid = (m[:, :-1] & m[:, 1:]).float()
            n += int(valid.sum())

            sums["clean"] += _masked_loss(model, hook, tok, m, valid, None)
            sums["zero"] += _masked_loss(model, hook, tok, m, valid, torch.zeros_like)
            for name, sae in saes.items():
                sums[name] += _masked_loss(model, hook, tok, m, valid, partial(_reconstruct, sae))
            if progress is not None:
                progress("ce", min(len(tokens), b0 + batch_size), len(tokens))
    d = max(n, 1)
    return {k: CeLosses(n, sums["clean"] / d, sums[k] / d, sums["zero"] / d) for k in saes}


def _reconstruct(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    return sae.decode(sae.encode(x))


def _masked_loss(
    model: HookedTransformer,
    hook: str,
    tok: torch.Tensor,
    m: torch.Tensor,
    valid: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor] | None,
) -> float:
    """Summed next-token loss where ``valid``; ``fn`` (if any) replaces the hook's activations where ``m``."""
    from saesteer.models.forward import token_nll

    if fn is None:
        logits = model(tok, return_type="logits")
    else:

        def hook_fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
            new = act.clone()
            new[m] = fn(act[m]).to(act.dtype)
            return new

        logits = model.run_with_hooks(tok, return_type="logits", fwd_hooks=[(hook, hook_fn)])
    return float((token_nll(logits, tok) * valid).sum())


def rounded_copy(sae: SAE, dtype: str) -> SAE:
    """A float32 copy of ``sae`` whose weights went through ``dtype`` (``"float16"``/``"bfloat16"``): what
    loading the SAE stored in that dtype gives."""
    import torch

    tgt = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    out = copy.deepcopy(sae)
    with torch.no_grad():
        for p in out.parameters():
            p.copy_(p.to(tgt).to(p.dtype))
    return out


def explained_variance(sae: SAE, x: torch.Tensor) -> float:
    """EV of ``sae`` on raw activations ``x [n, d]``."""
    import torch

    with torch.no_grad():
        rec = sae.decode(sae.encode(x))
    return float(1 - (x - rec).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
