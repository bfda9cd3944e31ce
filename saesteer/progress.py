"""Stages of a long job and their progress events: library code reports, the CLI renders.

A job reports through :class:`Stages`::

    stages = Stages(listener)
    with stages.stage("index", total=13) as st:
        for i, cond in enumerate(conds):
            ...
            st.update(i + 1, info=f"{cond}: 1,234 tokens")
        st.done("13 conditions, 45,678 tokens")

Each stage's wall time is recorded in ``stages.timings`` (in the order the stages ran) and every
start / update / end is handed to the listener as a :class:`ProgressEvent`. Library code never prints:
:mod:`saesteer.cli.progress` draws rich bars on a terminal and plain, throttled lines anywhere else
(log files, CI, ``| tee``, notebooks' ``!`` cells). Events are also logged at DEBUG level.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """``kind`` is ``start`` | ``update`` | ``end``; ``elapsed`` is seconds since the stage started;
    ``ok`` is False on the ``end`` event of a stage that raised."""

    stage: str
    kind: str
    done: int | None = None
    total: int | None = None
    info: str = ""
    elapsed: float = 0.0
    ok: bool = True


Listener = Callable[[ProgressEvent], None]


class Stage:
    """One running stage; :meth:`update` reports progress, :meth:`done` sets the text of its end event."""

    def __init__(self, owner: Stages, name: str, total: int | None, info: str) -> None:
        self._owner, self.name, self.total, self.info = owner, name, total, info
        self.completed: int | None = None
        self._t0 = owner.clock()
        self._ended = False
        owner.emit(ProgressEvent(name, "start", None, total, info, 0.0))

    @property
    def elapsed(self) -> float:
        return self._owner.clock() - self._t0

    def update(self, done: int | None = None, total: int | None = None, info: str | None = None) -> None:
        if done is not None:
            self.completed = done
        if total is not None:
            self.total = total
        if info is not None:
            self.info = info
        self._owner.emit(ProgressEvent(self.name, "update", self.completed, self.total, self.info, self.elapsed))

    def done(self, info: str) -> None:
        """The text of the end event (counts: what the stage produced)."""
        self.info = info

    def counter(self) -> Callable[[int, int], None]:
        """An adapter for ``progress(done, total)`` callbacks."""
        return lambda done, total: self.update(done, total)

    def messages(self) -> Callable[[str], None]:
        """An adapter for ``progress(message)`` callbacks."""
        return lambda msg: self.update(info=msg)

    def end(self, ok: bool = True) -> float:
        """Close the stage (idempotent); returns its wall time, which is recorded in the owner's timings."""
        if self._ended:
            return self._owner.timings[self.name]
        self._ended = True
        seconds = self.elapsed
        self._owner.timings[self.name] = self._owner.timings.get(self.name, 0.0) + seconds
        self._owner.emit(ProgressEvent(self.name, "end", self.completed, self.total, self.info, seconds, ok))
        return seconds


class Stages:
    """Records the wall time of named stages and forwards their events to ``listener``."""

    def __init__(self, listener: Listener | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.listener = listener
        self.clock = clock
        self.timings: dict[str, float] = {}

    def emit(self, ev: ProgressEvent) -> None:
        log.debug("%s %s %s/%s %s (%.1f s)", ev.stage, ev.kind, ev.done, ev.total, ev.info, ev.elapsed)
        if self.listener is not None:
            self.listener(ev)

    def start(self, name: str, total: int | None = None, info: str = "") -> Stage:
        """Start a stage by hand (end it with :meth:`Stage.end`); prefer :meth:`stage`."""
        return Stage(self, name, total, info)

    @contextmanager
    def stage(self, name: str, total: int | None = None, info: str = "") -> Iterator[Stage]:
        st = self.start(name, total, info)
        try:
            yield st
        except BaseException:
            st.end(ok=False)
            raise
        st.end()

    def table(self) -> list[dict[str, float | str]]:
        """``[{"stage": name, "seconds": s}, ...]`` plus a ``total`` row."""
        rows: list[dict[str, float | str]] = [{"stage": k, "seconds": round(v, 1)} for k, v in self.timings.items()]
        rows.append({"stage": "total", "seconds": round(sum(self.timings.values()), 1)})
        return rows
