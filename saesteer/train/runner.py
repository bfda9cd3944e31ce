"""One SAE training run through sae-lens' own runner (``LanguageModelSAETrainingRunner``), offline.

The runner gets the already-loaded model (``override_model``), the tokenized text (``override_dataset``,
so it never resolves a dataset name on the hub) and reads the activations from the cache written by
:mod:`saesteer.train.activation_cache` (``use_cached_activations``), so no forward pass is repeated.

Architecture: TopK (``topk``), BatchTopK (``batchtopk``) or Matryoshka BatchTopK (``matryoshka``: nested
prefixes of the latents must each reconstruct the input on their own, which pulls frequent, general features
such as a language's identity into the first latents instead of absorbing them into token-level ones), with
sae-lens' activation normalisation ``expected_average_only_in`` (Gemma's residual
stream has norms in the thousands). sae-lens folds the scaling factor into the weights when training
ends, so the saved SAE encodes and decodes *raw* activations (the quality report measures it on raw
held-out activations, and a unit test trains on activations scaled by 100 to check the folding).
The decoder bias starts at the (scaled) mean activation, which a short run could not learn on its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.errors import SaesteerError

if TYPE_CHECKING:
    import numpy as np
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """The knobs of one TopK training run (token counts are activation vectors, BOS excluded).

    The fields shared with :class:`~saesteer.train.pipeline.TrainSaeConfig` (``d_sae``, ``k``,
    ``batch_tokens``, ``lr``, ``seed``, ``architecture``, ``matryoshka_widths``) have no default here: the
    config is their single source (:meth:`TrainSaeConfig.settings`); the rest are this runner's own.
    """

    hook: str
    training_tokens: int
    d_sae: int
    k: int
    batch_tokens: int
    lr: float
    seed: int
    architecture: str  # "topk" | "batchtopk" | "matryoshka" (the last two save as JumpReLU)
    matryoshka_widths: tuple[int, ...]  # inner prefix widths (d_sae is appended); matryoshka only
    warmup_steps: int = 20
    decay_fraction: float = 0.2  # the last share of the steps decays the learning rate linearly
    dead_feature_window: int = 100  # steps without firing before AuxK treats a latent as dead
    aux_loss_coefficient: float = 1.0 / 32
    n_batches_for_norm_estimate: int = 20

    def __post_init__(self) -> None:
        check_architecture(self.architecture, self.matryoshka_widths, self.d_sae)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def steps(self) -> int:
        return max(1, self.training_tokens // self.batch_tokens)


ARCHITECTURES = ("topk", "batchtopk", "matryoshka")


def check_architecture(architecture: str, matryoshka_widths: tuple[int, ...], d_sae: int) -> None:
    """Refuse an unknown architecture, and Matryoshka prefix widths that are missing, unordered or not below
    ``d_sae`` (or given for another architecture)."""
    if architecture not in ARCHITECTURES:
        raise SaesteerError(f"unknown SAE architecture {architecture!r}: use {', '.join(ARCHITECTURES)}")
    widths = list(matryoshka_widths)
    if architecture != "matryoshka":
        if widths:
            raise SaesteerError("matryoshka widths only apply to the matryoshka architecture")
        return
    if not widths or sorted(set(widths)) != widths or widths[0] <= 0 or widths[-1] >= d_sae:
        raise SaesteerError(
            f"matryoshka widths must be strictly increasing and below the width {d_sae}, got {widths} "
            "(e.g. 128,512,2048)"
        )


def activation_stats(
    acts: np.ndarray, mask: np.ndarray, max_tokens: int = 50_000
) -> tuple[np.ndarray, float]:
    """``(mean [d], mean_norm)`` of the activations where ``mask`` is True (a deterministic subsample).

    acts: ``[n_seq, ctx, d]``; mask: ``[n_seq, ctx]``.
    """
    import numpy as np

    rows = np.flatnonzero(mask.reshape(-1))
    if rows.size == 0:
        raise SaesteerError("no activations to train on (every token is special)")
    step = max(1, rows.size // max_tokens)
    flat = np.asarray(acts).reshape(-1, acts.shape[-1])
    sample = flat[rows[::step]].astype(np.float64)
    return sample.mean(axis=0), float(np.linalg.norm(sample, axis=1).mean())


def make_training_sae(settings: TrainSettings, d_in: int, b_dec_init: np.ndarray | None) -> Any:
    """The sae-lens training SAE of ``settings.architecture`` (decoder bias at ``b_dec_init`` when given)."""
    import torch
    from sae_lens import (
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )

    common: dict[str, Any] = {
        "d_in": d_in,
        "d_sae": settings.d_sae,
        "k": settings.k,
        "dtype": "float32",
        "device": "cpu",
        "normalize_activations": "expected_average_only_in",
        "aux_loss_coefficient": settings.aux_loss_coefficient,
    }
    torch.manual_seed(settings.seed)
    sae: Any  # settings.architecture was checked when the settings were made
    if settings.architecture == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(**common))
    elif settings.architecture == "batchtopk":
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(**common))
    else:
        widths = [*settings.matryoshka_widths, settings.d_sae]
        sae = MatryoshkaBatchTopKTrainingSAE(
            MatryoshkaBatchTopKTrainingSAEConfig(**common, matryoshka_widths=widths)
        )
    if b_dec_init is not None:
        with torch.no_grad():
            sae.b_dec.copy_(torch.as_tensor(b_dec_init, dtype=torch.float32))
    return sae


def run_training(
    model: HookedTransformer,
    settings: TrainSettings,
    *,
    cached_activations: Path,
    tokens: np.ndarray,
    context_size: int,
    out_dir: Path,
    model_name: str,
    dataset_name: str,
    b_dec_init: np.ndarray | None = None,
) -> SAE:
    """Train one SAE with sae-lens' runner and save the inference SAE (sae-lens disk format) in ``out_dir``.

    ``tokens [n_seq, ctx]`` are the sequences whose activations ``cached_activations`` holds. A finished
    run in ``out_dir`` with the same settings is loaded instead of trained again.
    """
    import torch
    from datasets import Dataset
    from sae_lens import SAE, LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig

    marker = out_dir / "saesteer-run.json"
    stamp = {"settings": asdict(settings), "activations": str(cached_activations), "model": model_name}
    if marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(stamp)):
        log.info("reusing the finished run in %s", out_dir)
        return SAE.load_from_disk(str(out_dir)).eval()

    d_in = int(model.cfg.d_model)
    sae = make_training_sae(settings, d_in, b_dec_init)
    cfg = LanguageModelSAERunnerConfig(
        sae=sae.cfg,
        model_name=model_name,
        hook_name=settings.hook,
        dataset_path=dataset_name,
        is_dataset_tokenized=True,
        streaming=False,
        context_size=context_size,
        use_cached_activations=True,
        cached_activations_path=str(cached_activations),
        training_tokens=settings.training_tokens,
        train_batch_size_tokens=settings.batch_tokens,
        store_batch_size_prompts=8,
        n_batches_in_buffer=64,
        activations_mixing_fraction=0.5,
        device="cpu",
        dtype="float32",
        seed=settings.seed,
        prepend_bos=True,
        exclude_special_tokens=True,
        lr=settings.lr,
        lr_warm_up_steps=min(settings.warmup_steps, settings.steps // 10),
        lr_decay_steps=int(settings.steps * settings.decay_fraction),
        lr_scheduler_name="constant",
        dead_feature_window=settings.dead_feature_window,
        feature_sampling_window=max(settings.steps, 1),
        n_batches_for_norm_estimate=settings.n_batches_for_norm_estimate,
        model_from_pretrained_kwargs={},  # saesteer's models are loaded without weight processing
        logger=LoggingConfig(log_to_wandb=False),
        checkpoint_path=None,
        n_checkpoints=0,
        output_path=None,
        verbose=False,
    )
    dataset = Dataset.from_dict({"tokens": [row.tolist() for row in tokens[: max(1, min(len(tokens), 64))]]})
    torch.manual_seed(settings.seed)
    runner = LanguageModelSAETrainingRunner(
        cfg, override_dataset=dataset, override_model=model, override_sae=sae
    )
    trained = runner.run()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        runner.save_final_sae(trained, str(tmp))
        (tmp / "saesteer-run.json").write_text(json.dumps(stamp))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SAE.load_from_disk(str(out_dir)).eval()
