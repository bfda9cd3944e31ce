"""Train saesteer's default SAE offline: multilingual Debian text, cached activations, sae-lens' runner,
a measured hook choice and a quality report (``saesteer train-sae``; see ``docs/default_sae.md``).

Modules: :mod:`~saesteer.train.sources` (where the text comes from), :mod:`~saesteer.train.textclean`
(groff / gettext / DDTP to plain text), :mod:`~saesteer.train.data` (balanced, packed token splits),
:mod:`~saesteer.train.activation_cache` (activation cache), :mod:`~saesteer.train.runner` (one sae-lens run),
:mod:`~saesteer.train.select_hook` (hook comparison), :mod:`~saesteer.train.quality` (metrics),
:mod:`~saesteer.train.report` (REPORT.md / report.json), :mod:`~saesteer.train.pipeline` (all of it).
"""

from __future__ import annotations

from saesteer.train.pipeline import DEFAULT_HOOKS, TrainSaeConfig, TrainSaeResult, run_train_sae

__all__ = ["DEFAULT_HOOKS", "TrainSaeConfig", "TrainSaeResult", "run_train_sae"]
