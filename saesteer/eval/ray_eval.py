"""``eval language --engine ray``: the evaluation's languages run on Ray workers that each hold the model.

A job is one target language with every method and strength (its cells: (language, method, strength)),
run by :func:`~saesteer.eval.language.evaluate_language_steering` itself on a worker, so the rows are the
rows of a local run (greedy decoding: the same text). Each worker loads the model, SAE and generation
backend once and keeps, across its jobs, one :class:`~saesteer.eval.recipes.RecipeVectors` (typical
norm, DiffMean means) and the unsteered generations (every job needs the same baseline). The driver
puts the rows in the local order (baseline, then the languages as given), checks that every worker's
baseline is the same text, and summarises once; the CLI writes the report once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.cluster import ClusterError, RaySettings, first_line, ray_cluster, worker_error

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.eval.language import LanguageEvalConfig, LanguageEvalResult


class _MemoBackend:
    """A backend whose unsteered generations (same prompts, same settings) are computed once."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._cache: dict[Any, list[Any]] = {}

    def generate(self, prompts: Sequence[str], cfg: Any = None, *, steer: Any = None, sae: Any = None,
                 progress: Any = None, row_steer: Any = None) -> list[Any]:
        args = (list(prompts),) if cfg is None else (list(prompts), cfg)
        if steer is not None or sae is not None or row_steer is not None:
            return self._backend.generate(*args, steer=steer, sae=sae, progress=progress, row_steer=row_steer)
        key = (tuple(prompts), cfg)
        if key not in self._cache:
            self._cache[key] = self._backend.generate(*args, progress=progress)
        return list(self._cache[key])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class EvalActor:
    """One worker: the model, SAE and backend, loaded once. Wrapped by ``ray.remote`` at run time."""

    def __init__(self, model: str, sae: str, threads: int) -> None:
        self.error: str | None = None
        try:
            import torch

            from saesteer.models import load_model
            from saesteer.saes import load_sae
            from saesteer.steer.generate import make_backend

            torch.set_num_threads(threads)
            self.model = load_model(model)
            self.sae = load_sae(sae, model=self.model)
            self.backend = _MemoBackend(make_backend(model))
            self.factories: dict[Any, Any] = {}
        except Exception as exc:
            self.error = f"a worker cannot load the model or SAE ({model}, {sae}): {first_line(exc)}"

    def ready(self) -> str | None:
        return self.error

    def run(self, db: str, prompts: list[Any], cfg: LanguageEvalConfig, lang: str) -> tuple[str, pd.DataFrame]:
        from saesteer.eval.language import evaluate_language_steering
        from saesteer.eval.recipes import RecipeVectors

        key = (db, cfg.diffmean_texts, cfg.random_max_freq, cfg.corpus)
        if key not in self.factories:
            self.factories[key] = RecipeVectors(self.model, self.sae, db, diffmean_texts=cfg.diffmean_texts,
                                                random_max_freq=cfg.random_max_freq, corpus=cfg.corpus)
        res = evaluate_language_steering(self.model, self.backend, self.sae, db, prompts,
                                         replace(cfg, languages=(lang,)), factory=self.factories[key])
        return lang, res.samples


def evaluate_language_ray(
    model: str,
    sae: str,
    db: str | Path,
    prompts: Sequence[Any],
    cfg: LanguageEvalConfig,
    settings: RaySettings = RaySettings(),
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> LanguageEvalResult:
    """The language evaluation with one job per target language on Ray workers (rows as a local run)."""
    from ray.util import ActorPool

    if not cfg.languages:
        raise ClusterError("no languages to evaluate")
    got: dict[str, pd.DataFrame] = {}
    with ray_cluster(settings) as (ray, n_workers):
        remote = ray.remote(num_cpus=settings.cpus_per_worker, max_restarts=3, max_task_retries=3)
        actors = [remote(EvalActor).remote(model, sae, settings.threads)
                  for _ in range(min(n_workers, len(cfg.languages)))]
        try:
            try:
                errors = ray.get([a.ready.remote() for a in actors])
            except Exception as exc:
                raise worker_error(exc, "a worker failed to start") from exc
            for error in errors:
                if error is not None:
                    raise ClusterError(error)
            jobs = ActorPool(actors).map_unordered(
                lambda a, lang: a.run.remote(str(db), list(prompts), cfg, lang), list(cfg.languages)
            )
            while True:
                try:
                    lang, samples = next(jobs)
                except StopIteration:
                    break
                except Exception as exc:
                    raise worker_error(exc, "an evaluation job failed on a worker") from exc
                got[lang] = samples
                if progress is not None:
                    progress(lang, len(got), len(cfg.languages))
        finally:
            for a in actors:
                ray.kill(a)
    return _combine(got, cfg)


def _combine(got: dict[str, pd.DataFrame], cfg: LanguageEvalConfig) -> LanguageEvalResult:
    """The rows in the local order (baseline, then each language as given) and the summary of a local run."""
    import pandas as pd

    from saesteer.eval.language import result_from_samples

    def baseline(df: pd.DataFrame) -> pd.DataFrame:
        return df[df["method"] == "unsteered"].reset_index(drop=True)

    base = baseline(got[cfg.languages[0]])
    for lang in cfg.languages[1:]:
        if baseline(got[lang])["text"].tolist() != base["text"].tolist():
            raise ClusterError(
                f"the workers' unsteered continuations differ (language {lang}); every node needs the same "
                "model files and library versions"
            )
    rows = [base] + [got[lang][got[lang]["method"] != "unsteered"] for lang in cfg.languages]
    samples = pd.concat(rows, ignore_index=True)
    return result_from_samples(samples, cfg)
