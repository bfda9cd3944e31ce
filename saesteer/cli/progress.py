"""Render :mod:`saesteer.progress` events: rich bars on a terminal, plain lines anywhere else.

Plain mode (stderr is not a terminal: a log file, CI, ``| tee``, a notebook's ``!`` cell) prints one
line when a stage starts, one when it ends (with its counts and elapsed time), and for long stages an
update line at most every ``interval`` seconds, so a working run can be told from a hung one::

    [   0.0s] index: started (13 conditions)
    [  30.2s] index: 4/13 language=fr: 3,412 tokens (30.2 s)
    [  61.9s] index: done in 61.9 s (13/13; 13 conditions, 45,678 tokens)

Before each stage starts the view also sets torch's thread count from the current load
(:func:`saesteer.threads.adapt_threads`: every core on a quiet machine, fewer when other processes keep them
busy), so that every long command adapts without code of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from saesteer.cli.common import err_console
from saesteer.progress import ProgressEvent, Stage, Stages

if TYPE_CHECKING:
    from saesteer.index.build import BuildProgress


class ProgressView:
    """A listener for :class:`~saesteer.progress.Stages`; use as a context manager around the job."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        plain: bool | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        adapt_threads: bool = True,
    ) -> None:
        self.console = console or err_console
        self.adapt_threads = adapt_threads
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self.interval = interval
        self.clock = clock
        self._t0 = clock()
        self._last_line = -float("inf")
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressView:
        if not self.plain:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console, transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(et, ev, tb)
            self._bar = None

    def stages(self) -> Stages:
        """A :class:`Stages` that reports to this view."""
        return Stages(self)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print to stdout above the bars (plain mode: straight to stdout)."""
        if self._bar is not None:
            self._bar.console.print(*objects, **kwargs)
        else:
            from saesteer.cli.common import console

            console.print(*objects, **kwargs)

    def __call__(self, ev: ProgressEvent) -> None:
        if ev.kind == "start" and self.adapt_threads:
            from saesteer.threads import adapt_threads

            adapt_threads()
        if self.plain:
            self._line(ev)
        else:
            self._draw(ev)

    def _line(self, ev: ProgressEvent) -> None:
        now = self.clock()
        if ev.kind == "update" and now - self._last_line < self.interval:
            return
        count = f"{ev.done:,}/{ev.total:,}" if ev.done is not None and ev.total else ""
        if ev.kind == "start":
            detail = ", ".join(x for x in (ev.info, f"{ev.total:,} steps" if ev.total else "") if x)
            text = "started" + (f" ({detail})" if detail else "")
        elif ev.kind == "update":
            text = " ".join(x for x in (count, ev.info, f"({ev.elapsed:.1f} s)") if x)
        else:
            detail = "; ".join(x for x in (count, ev.info) if x)
            text = ("done" if ev.ok else "FAILED") + f" in {ev.elapsed:.1f} s" + (f" ({detail})" if detail else "")
        self.console.print(f"[{now - self._t0:7.1f}s] {ev.stage}: {text}", markup=False, highlight=False,
                           soft_wrap=True)
        self._last_line = now

    def _draw(self, ev: ProgressEvent) -> None:
        bar = self._bar
        if bar is None:
            return
        if ev.kind == "start" or ev.stage not in self._tasks:
            self._tasks[ev.stage] = bar.add_task(ev.stage, total=ev.total, info=ev.info)
        task = self._tasks[ev.stage]
        if ev.kind == "end":
            total = ev.total or ev.done or 1
            bar.update(task, total=total, completed=total, info=ev.info if ev.ok else f"failed: {ev.info}")
            bar.stop_task(task)
        else:
            bar.update(task, total=ev.total, completed=ev.done or 0, info=ev.info)


class BuildStages:
    """A :func:`saesteer.index.build.build_index` progress callback that reports one stage per condition
    (``index language=fr``), whose end line carries its documents, tokens and tokens/s. Call
    :meth:`close` after the build (it ends the logit-lens stage, which has no end event of its own)."""

    def __init__(self, stages: Stages, prefix: str = "index") -> None:
        self.stages, self.prefix = stages, prefix
        self._open: dict[str, Stage] = {}

    def __call__(self, ev: BuildProgress) -> None:
        name = f"{self.prefix} {ev.condition}" if ev.status != "feature_output" else f"{self.prefix} logit lens"
        if ev.status in ("skipped", "imported"):
            st = self.stages.start(name, ev.total_docs)
            st.done("imported from the shipped index" if ev.status == "imported" else "done earlier")
            st.end()
            return
        if name not in self._open:
            self._open[name] = self.stages.start(name, ev.total_docs)
        st = self._open[name]
        if ev.status == "feature_output":
            return
        rate = ev.n_tokens / max(st.elapsed, 1e-9)
        st.update(ev.n_docs, info=f"{ev.n_tokens:,} tok, {rate:,.0f} tok/s")
        if ev.status == "written":
            st.update(ev.n_docs, ev.n_docs or 1)
            st.done(f"{ev.n_docs:,} docs, {ev.n_tokens:,} tokens, {rate:,.0f} tok/s")
            self._open.pop(name).end()

    def close(self, ok: bool = True) -> None:
        for st in self._open.values():
            st.end(ok)
        self._open.clear()


class NamedCounters:
    """A ``progress(stage, done, total)`` callback (``train-sae``, ``index merge``): a stage starts at its
    first event and ends when ``done`` reaches ``total``; :meth:`close` ends the ones still open."""

    def __init__(self, stages: Stages) -> None:
        self.stages = stages
        self._open: dict[str, Stage] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        if name not in self._open:
            self._open[name] = self.stages.start(name, total)
        st = self._open[name]
        st.update(done, total)
        if total and done >= total:
            self._open.pop(name).end()

    def close(self, ok: bool = True) -> None:
        for st in self._open.values():
            st.end(ok)
        self._open.clear()
