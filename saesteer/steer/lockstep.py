"""Run independent generation jobs in lockstep, so that their ``generate`` calls become one batched call.

A strength search is sequential (each strength depends on what the previous ones gave), but the searches
of different (language, recipe) pairs are independent. :func:`run_lockstep` runs each job in its own
thread, one at a time (a job runs until it asks for a generation, then the next one runs; never two at
once, so the jobs need no locking of their own). When every unfinished job is waiting for a generation,
the last one to ask generates all their requests in one call, each row with its own steering
(``row_steer``), in batches of ``batch_size`` rows, and every job continues with its own rows.

On a CPU most of a decode step is reading weights (Gemma 3 270M: the 262k-token unembedding alone is about
half), so a step of 24 rows costs little more than a step of 4; ``benchmarks/bench_steer.py`` prints
tok/s by batch size. Greedy continuations are those of separate calls (``tests/test_lockstep.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from saesteer.steer.generate import Backend, Generation, GenerationConfig, RowSteer
from saesteer.steer.hooks import SaeArg, Steer
from saesteer.steer.vector import SteeringVector


class _Cancelled(Exception):
    """Raised in a waiting job when another job failed: the run stops at the first error."""


class LockstepBackend:
    """The backend the jobs of :func:`run_lockstep` generate with (everything but ``generate`` passes
    through to the wrapped backend)."""

    def __init__(self, backend: Backend, batch_size: int) -> None:
        self._backend = backend
        self._batch_size = batch_size
        self._cv = threading.Condition()
        self._alive = 0
        self._pending: dict[int, tuple[list[str], GenerationConfig, Any, SaeArg]] = {}
        self._results: dict[int, list[Generation]] = {}
        self._error: BaseException | None = None
        self.calls = 0  # combined generate calls made (for tests and logs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def generate(
        self,
        prompts: Sequence[str],
        cfg: GenerationConfig = GenerationConfig(),
        *,
        steer: Steer | Sequence[Steer] | None = None,
        sae: SaeArg = None,
        progress: Any = None,
        row_steer: RowSteer | None = None,
    ) -> list[Generation]:
        """Called by a job (holding the baton): queue the request, and run the combined call if every
        unfinished job is now waiting; else wait (giving the baton to the next job) for the results."""
        if row_steer is not None or (isinstance(steer, (list, tuple)) and steer and not _is_pair(steer)):
            # composed or per-row steering cannot be merged into one row each: run it alone
            return self._backend.generate(prompts, cfg, steer=steer, sae=sae, progress=progress,
                                          row_steer=row_steer)
        key = threading.get_ident()
        self._pending[key] = (list(prompts), cfg, steer, sae)
        if len(self._pending) == self._alive:
            self._run()
        while key not in self._results:
            if self._error is not None:
                raise _Cancelled() from self._error
            self._cv.wait()
        return self._results.pop(key)

    def _run(self) -> None:
        """Generate every pending request in one call (requests with other decoding settings: their own)."""
        pending, self._pending = self._pending, {}
        try:
            groups: dict[GenerationConfig, list[int]] = {}
            for key, (_, cfg, _, _) in pending.items():
                groups.setdefault(replace(cfg, batch_size=1), []).append(key)
            for cfg1, keys in groups.items():
                prompts: list[str] = []
                rows: list[Steer | None] = []
                sae: SaeArg = None
                for key in keys:
                    p, _, steer, s = pending[key]
                    prompts += p
                    rows += [steer] * len(p)
                    sae = sae if s is None else s
                cfg = replace(cfg1, batch_size=max(self._batch_size, max(pending[k][1].batch_size for k in keys)))
                gens = self._backend.generate(prompts, cfg, sae=sae, row_steer=rows)
                self.calls += 1
                start = 0
                for key in keys:
                    n = len(pending[key][0])
                    self._results[key] = gens[start : start + n]
                    start += n
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._cv.notify_all()

    def _start(self) -> None:
        self._cv.acquire()

    def _finish(self) -> None:
        """A job ended (or failed): it no longer counts; if the others all wait, run their requests."""
        try:
            self._alive -= 1
            if self._pending and len(self._pending) == self._alive and self._error is None:
                try:
                    self._run()
                except BaseException:  # the waiting jobs see it as self._error
                    pass
        finally:
            self._cv.notify_all()
            self._cv.release()


def _is_pair(steer: Any) -> bool:
    return isinstance(steer, tuple) and len(steer) == 2 and isinstance(steer[0], SteeringVector)


def run_lockstep(backend: Backend, jobs: Sequence[Callable[[Backend], object]], *, batch_size: int = 24) -> None:
    """Run ``jobs`` (each gets the :class:`LockstepBackend` to generate with) in lockstep; see the module
    docstring. Re-raises the first error of any job (the others stop at their next generation)."""
    if len(jobs) <= 1:
        for job in jobs:
            job(backend)
        return
    lock = LockstepBackend(backend, batch_size)
    lock._alive = len(jobs)
    errors: list[BaseException] = []

    def work(job: Callable[[Backend], object]) -> None:
        lock._start()
        try:
            job(lock)  # type: ignore[arg-type]
        except _Cancelled:
            pass
        except BaseException as exc:
            errors.append(exc)
            if lock._error is None:
                lock._error = exc
        finally:
            lock._finish()

    threads = [threading.Thread(target=work, args=(job,), name=f"lockstep-{i}", daemon=True)
               for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if lock._error is not None:
        raise lock._error
