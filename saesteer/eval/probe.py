"""A linear probe on a dataset's own labels: the target metric of steering that needs no language ID.

Features: the *unsteered* model's residual at the vector's hook, mean-pooled over a text's tokens (BOS
and padding excluded). Classifier: multinomial logistic regression (standardised features, L2 penalty,
full-batch L-BFGS), trained on the train split; its accuracy on the held-out split is reported next to
every number it produces, so a weak probe is visible.

Applied to steered continuations, :meth:`LinearProbe.share` is the share of continuations the probe
assigns to the target label (an empty continuation counts as not on target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from saesteer.errors import CorpusError

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

Metric = Callable[[Sequence[str], Sequence[str]], float]


def pooled_residuals(
    model: HookedTransformer, hook: str, texts: Sequence[str], *, batch_size: int = 32, max_len: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features [n, d_model] float32, has_tokens [n] bool)``: the mean residual at ``hook`` over each
    text's tokens (zeros where a text has no token besides BOS)."""
    from saesteer.steer.residuals import iter_residuals

    feats: list[torch.Tensor] = []
    valid: list[torch.Tensor] = []
    if not texts:
        return torch.zeros(0, model.cfg.d_model), torch.zeros(0, dtype=torch.bool)
    for resid, keep in iter_residuals(model, [hook], list(texts), batch_size=batch_size, max_len=max_len):
        r = resid[hook].float()
        k = keep.unsqueeze(-1).float()
        n = k.sum(dim=1)
        feats.append((r * k).sum(dim=1) / n.clamp_min(1.0))
        valid.append(n.squeeze(-1) > 0)
    return torch.cat(feats).cpu(), torch.cat(valid).cpu()


@dataclass(frozen=True, eq=False)
class LinearProbe:
    """A trained probe (see the module docstring)."""

    hook: str
    classes: tuple[str, ...]
    mean: torch.Tensor  # [d_model]
    std: torch.Tensor  # [d_model]
    weight: torch.Tensor  # [n_classes, d_model]
    bias: torch.Tensor  # [n_classes]
    train_accuracy: float
    heldout_accuracy: float
    n_train: int
    n_heldout: int

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        return ((feats - self.mean) / self.std) @ self.weight.T + self.bias

    def predict_features(self, feats: torch.Tensor, valid: torch.Tensor | None = None) -> list[str | None]:
        idx = self.logits(feats).argmax(dim=-1).tolist()
        ok = valid.tolist() if valid is not None else [True] * len(idx)
        return [self.classes[i] if v else None for i, v in zip(idx, ok, strict=True)]

    def predict(self, model: HookedTransformer, texts: Sequence[str]) -> list[str | None]:
        """The predicted label of each text (``None`` for a text without tokens)."""
        feats, valid = pooled_residuals(model, self.hook, texts)
        return self.predict_features(feats, valid)

    def share(self, model: HookedTransformer, texts: Sequence[str], target: str) -> float:
        """Share of ``texts`` the probe assigns to ``target``."""
        if target not in self.classes:
            raise CorpusError(f"the probe knows labels {', '.join(self.classes)}, not {target!r}")
        if not texts:
            return 0.0
        return sum(p == target for p in self.predict(model, texts)) / len(texts)

    def metric(self, model: HookedTransformer, target: str) -> Metric:
        """A sweep metric ``(prompts, continuations) -> share on target``."""

        def metric(_prompts: Sequence[str], texts: Sequence[str]) -> float:
            return self.share(model, texts, target)

        metric.__name__ = f"probe_share[{target}]"
        return metric


def fit_logistic(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, *, l2: float = 1e-2, max_iter: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on standardised ``x [n, d]``: ``(weight [C, d], bias [C])``."""
    torch.manual_seed(0)
    w = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    xd = x.double()
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xd @ w.T + b, y) + l2 * (w * w).sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().float(), b.detach().float()


def train_probe(
    model: HookedTransformer,
    hook: str,
    train: tuple[Sequence[str], Sequence[str]],
    heldout: tuple[Sequence[str], Sequence[str]],
    *,
    l2: float = 1e-2,
) -> LinearProbe:
    """Train on ``train = (texts, labels)``; report accuracy on ``heldout = (texts, labels)``."""
    texts, labels = list(train[0]), [str(x) for x in train[1]]
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise CorpusError("the probe needs at least two labels in the train split")
    feats, _ = pooled_residuals(model, hook, texts)
    mean = feats.mean(dim=0)
    std = feats.std(dim=0).clamp_min(1e-6)
    y = torch.tensor([classes.index(lb) for lb in labels])
    w, b = fit_logistic((feats - mean) / std, y, len(classes), l2=l2)
    probe = LinearProbe(hook, classes, mean, std, w, b, float("nan"), float("nan"), len(texts), len(heldout[0]))
    train_acc = _accuracy(probe.predict_features(feats), labels)
    held_acc = float("nan")
    if heldout[0]:
        hf, hv = pooled_residuals(model, hook, list(heldout[0]))
        held_acc = _accuracy(probe.predict_features(hf, hv), [str(x) for x in heldout[1]])
    return LinearProbe(hook, classes, mean, std, w, b, train_acc, held_acc, len(texts), len(heldout[0]))


def _accuracy(pred: Sequence[str | None], gold: Sequence[str]) -> float:
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold) if gold else float("nan")
