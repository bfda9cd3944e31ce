"""How many threads torch uses on the CPU: every core on a quiet machine, fewer when other processes keep
the cores busy.

torch's OpenMP threads wait for each other at the end of every parallel operation by spinning. When other
work shares the cores, the OS deschedules one of them and the rest spin until it runs again: on a 2-core
machine at load 5, Gemma 3 270M generated 4.5 tok/s with 2 threads and 30 tok/s with 1 (12 prompts x 16
tokens; ``benchmarks/bench_steer.py`` prints the comparison under the load of its run). So the CLI's long
commands measure, before they start and before each stage, how many cores other processes keep busy, and
leave those to them (:func:`adapt_threads`). ``OMP_NUM_THREADS`` or ``SAESTEER_THREADS`` in the
environment fix the number instead.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)
ENV = "SAESTEER_THREADS"


def _cpu_busy_seconds(stat: Path) -> float | None:
    """Seconds the whole machine spent busy (user, nice, system, irq, softirq), from ``/proc/stat``."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def others_busy(window: float = 0.1, *, stat: Path = Path("/proc/stat")) -> float | None:
    """Cores kept busy by other processes over the next ``window`` seconds (this process sleeps meanwhile,
    and its own CPU time is subtracted); None where ``/proc/stat`` is unavailable (not Linux)."""
    before = _cpu_busy_seconds(stat)
    own_before = sum(os.times()[:2])
    t0 = time.monotonic()
    time.sleep(window)
    after = _cpu_busy_seconds(stat)
    if before is None or after is None:
        return None
    own = sum(os.times()[:2]) - own_before
    return max(0.0, (after - before - own) / max(time.monotonic() - t0, 1e-3))


def choose_threads(cores: int, busy: float) -> int:
    """Threads for ``cores`` cores of which other processes keep ``busy`` busy: the cores left to us (a core
    counts as taken once it is more than half busy), at least 1."""
    return max(1, min(cores, math.floor(cores - busy + 0.5)))


def adapt_threads(window: float = 0.1) -> int:
    """Set torch's thread count from the current load (see the module docstring) and return it; with
    ``SAESTEER_THREADS`` or ``OMP_NUM_THREADS`` set, use that (or leave torch's) instead."""
    import torch

    fixed = os.environ.get(ENV)
    if fixed:
        try:
            n = max(1, int(fixed))
        except ValueError:
            log.warning("%s=%r is not a number; ignored", ENV, fixed)
        else:
            torch.set_num_threads(n)
            return n
    if os.environ.get("OMP_NUM_THREADS"):
        return int(torch.get_num_threads())
    cores = os.cpu_count() or 1
    if cores == 1:
        return 1
    busy = others_busy(window)
    if busy is None:
        return int(torch.get_num_threads())
    n = choose_threads(cores, busy)
    if n != torch.get_num_threads():
        log.info("%.1f of %d cores busy with other processes: torch uses %d thread(s)", busy, cores, n)
        torch.set_num_threads(n)
    return n
