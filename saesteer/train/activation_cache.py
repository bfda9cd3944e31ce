"""Cache residual-stream activations once, so that the layer comparison, the final training run and a
retrain never repeat the forward passes.

Two layouts, both under one cache directory:

- ``<name>/<hook>.f32``: a float32 memmap ``[n_seq, context_size, d_model]`` per hook, filled batch by
  batch (``<name>/progress.json`` records how many sequences are done, so an interrupted run resumes);
  every hook of a set is captured in the same forward pass, which stops after the deepest hook's block.
- ``<name>-saelens/<hook>/``: the same activations as a Hugging Face dataset in sae-lens' cached-activation
  format (a ``[context_size, d_model]`` column named after the hook plus ``token_ids``), the sequences in a
  seeded shuffled order, which ``LanguageModelSAETrainingRunner`` reads with ``use_cached_activations``.

Activations are stored in float32: Gemma's BOS residual has components above float16's range.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from saesteer.models.hooks import validate_hook

if TYPE_CHECKING:
    import numpy as np
    from transformer_lens import HookedTransformer

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _safe(hook: str) -> str:
    return hook.replace("/", "_")


class ActivationCache:
    """Activation memmaps under ``root`` for one model and one set of token arrays."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str, hook: str) -> Path:
        return self.root / name / f"{_safe(hook)}.f32"

    def _progress_file(self, name: str) -> Path:
        return self.root / name / "progress.json"

    def _done(self, name: str, hook: str, n_seq: int, shape_key: str) -> int:
        pf = self._progress_file(name)
        if not pf.is_file() or not self.path(name, hook).is_file():
            return 0
        state = json.loads(pf.read_text())
        entry = state.get(hook)
        if not entry or entry.get("shape") != shape_key:
            return 0
        return min(int(entry.get("done", 0)), n_seq)

    def _mark(self, name: str, hooks: Sequence[str], done: int, shape_key: str) -> None:
        pf = self._progress_file(name)
        state = json.loads(pf.read_text()) if pf.is_file() else {}
        for h in hooks:
            state[h] = {"done": done, "shape": shape_key}
        tmp = pf.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, pf)

    def ensure(
        self,
        model: HookedTransformer,
        name: str,
        tokens: np.ndarray,
        hooks: Sequence[str],
        *,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> dict[str, np.ndarray]:
        """Activations of ``tokens [n_seq, ctx]`` at each hook, as read-only memmaps ``[n_seq, ctx, d_model]``;
        computes only what is missing (resuming an interrupted run)."""
        import numpy as np
        import torch

        from saesteer.models.forward import run_to_hooks

        specs = [validate_hook(model, h) for h in hooks]  # residual-stream hooks only
        n_seq, ctx = int(tokens.shape[0]), int(tokens.shape[1])
        d = int(model.cfg.d_model)
        shape_key = f"{n_seq}x{ctx}x{d}:{_tokens_digest(tokens)}"
        if n_seq == 0:
            return {h: np.zeros((0, ctx, d), dtype=np.float32) for h in hooks}
        (self.root / name).mkdir(parents=True, exist_ok=True)
        start = min(self._done(name, h, n_seq, shape_key) for h in hooks)
        if start < n_seq:
            maps = {}
            for h in hooks:
                p = self.path(name, h)
                mode: Literal["r+", "w+"] = (
                    "r+" if p.is_file() and p.stat().st_size == n_seq * ctx * d * 4 and start > 0 else "w+"
                )
                maps[h] = np.memmap(p, dtype=np.float32, mode=mode, shape=(n_seq, ctx, d))
            stop = max(s.stop_at_layer for s in specs)
            log.info("caching %d sequences at %s (from %d)", n_seq, ", ".join(hooks), start)
            with torch.no_grad():
                for b0 in range(start, n_seq, batch_size):
                    b1 = min(n_seq, b0 + batch_size)
                    batch = torch.as_tensor(np.asarray(tokens[b0:b1]), dtype=torch.long)
                    cache = run_to_hooks(model, batch, None, hooks, stop)
                    for h in hooks:
                        maps[h][b0:b1] = cache[h].float().numpy()
                    if (b1 - start) % (batch_size * 8) == 0 or b1 == n_seq:
                        for m in maps.values():
                            m.flush()
                        self._mark(name, hooks, b1, shape_key)
                    if progress is not None:
                        progress(f"activations:{name}", b1, n_seq)
            for m in maps.values():
                m.flush()
            del maps
        return {
            h: np.memmap(self.path(name, h), dtype=np.float32, mode="r", shape=(n_seq, ctx, d)) for h in hooks
        }

    def saelens_dataset(
        self, name: str, hook: str, acts: np.ndarray, tokens: np.ndarray, *, seed: int = 0
    ) -> Path:
        """Write (once) the sae-lens cached-activation dataset of ``acts [n_seq, ctx, d]`` and return its path."""
        from datasets import Array2D, Dataset, Features, Sequence, Value, concatenate_datasets

        from saesteer.train.data import shuffled_order

        out = self.root / f"{name}-saelens" / _safe(hook)
        n_seq, ctx, d = (int(x) for x in acts.shape)
        stamp = {"n_seq": n_seq, "ctx": ctx, "d": d, "seed": seed, "tokens": _tokens_digest(tokens)}
        marker = out / "saesteer.json"
        if marker.is_file() and json.loads(marker.read_text()) == stamp:
            return out
        features = Features(
            {
                hook: Array2D(shape=(ctx, d), dtype="float32"),
                "token_ids": Sequence(Value(dtype="int32"), length=ctx),
            }
        )
        order = shuffled_order(n_seq, seed)
        shards = []
        for i in range(0, n_seq, 64):
            idx = order[i : i + 64]
            shards.append(
                Dataset.from_dict(
                    {hook: [acts[j] for j in idx], "token_ids": [tokens[j].astype("int32") for j in idx]},
                    features=features,
                )
            )
        ds = concatenate_datasets(shards)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
        try:
            ds.save_to_disk(str(tmp))
            (tmp / "saesteer.json").write_text(json.dumps(stamp))
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out


def _tokens_digest(tokens: np.ndarray) -> str:
    import hashlib

    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(tokens).tobytes()).hexdigest()[:16]


def token_mask(tokens: np.ndarray, special_ids: Sequence[int]) -> np.ndarray:
    """``[n_seq, ctx]`` bool: True where the token is not special (BOS, padding, ...)."""
    import numpy as np

    return ~np.isin(tokens, np.asarray(list(special_ids), dtype=tokens.dtype))
