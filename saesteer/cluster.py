"""Running work on a Ray cluster: the engine settings, connecting (or starting a local cluster), and
turning Ray's failures into one-line saesteer errors.

Ray is an optional extra (``pip install 'saesteer[ray]'``); nothing here imports it at import time.
The distributed index build (:mod:`saesteer.index.ray_build`) and evaluation
(:mod:`saesteer.eval.ray_eval`) use these helpers; Ray itself schedules, retries and moves the data.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from saesteer.errors import SaesteerError

INSTALL_HINT = "pip install 'saesteer[ray]'"
ENGINES = ("local", "ray")


class ClusterError(SaesteerError):
    """Ray is missing, the cluster cannot be reached, or a worker failed."""


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide to run. ``address=None`` starts a local Ray cluster sized to the workers
    (``workers x cpus_per_worker`` CPUs); otherwise it joins the cluster at ``address`` (``host:port``
    of ``ray start --head``, or ``auto``). ``workers=None``: as many as the cluster's CPUs allow (local: 1).
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0  # Ray CPUs per worker; torch uses max(1, int(this)) threads
    object_store_mb: int = 512  # local clusters only: units and rows are small

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ClusterError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker <= 0:
            raise ClusterError(f"--cpus-per-worker must be positive, got {self.cpus_per_worker}")

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus_per_worker))


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ClusterError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return engine


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens on (``ray.init`` would wait minutes for it)."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"--address must look like HOST:PORT (e.g. 10.0.0.5:6379) or auto, not {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster at {address} ({exc.strerror or exc}); start one with `ray start --head` "
            "or leave out --address to run on this machine"
        ) from exc


@contextmanager
def ray_cluster(settings: RaySettings) -> Iterator[tuple[Any, int]]:
    """Connect to (or start) a cluster; yield ``(ray, workers)``. A cluster this call started (or
    connected to) is shut down on exit; one that was already initialised in this process is left alone."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if settings.address is None:
            workers = settings.workers or 1
            kwargs.update(
                num_cpus=max(1, math.ceil(workers * settings.cpus_per_worker)),
                include_dashboard=False,
                object_store_memory=settings.object_store_mb << 20,
            )
        else:
            _probe(settings.address)
            kwargs["address"] = settings.address
        quiet = logging.getLogger("ray")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # Ray's start-up notices would break the one-line output
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = settings.address or "a local Ray cluster"
            raise ClusterError(f"cannot start or join {where}: {first_line(exc)}") from exc
        finally:
            quiet.setLevel(level)
        started = True
    try:
        cpus = float(ray.cluster_resources().get("CPU", 0))
        workers = settings.workers or max(1, int(cpus // settings.cpus_per_worker))
        if workers * settings.cpus_per_worker > cpus + 1e-9:
            raise ClusterError(
                f"{workers} worker(s) x {settings.cpus_per_worker:g} CPU(s) need more than the cluster's "
                f"{cpus:g} CPUs; lower --workers or --cpus-per-worker, or add nodes"
            )
        yield ray, workers
    finally:
        if started:
            ray.shutdown()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unwrap(exc: BaseException) -> BaseException:
    """The user's exception inside Ray's wrappers (``RayTaskError.cause``), or ``exc`` itself."""
    seen = 0
    while seen < 5 and getattr(exc, "cause", None) is not None and exc is not exc.cause:  # type: ignore[attr-defined]
        exc = exc.cause  # type: ignore[attr-defined]
        seen += 1
    return exc


def worker_error(exc: BaseException, what: str) -> SaesteerError:
    """One line for a failure on a worker: a saesteer error as it is, anything else with ``what``."""
    inner = unwrap(exc)
    if isinstance(inner, SaesteerError):
        return inner
    return ClusterError(f"{what}: {type(inner).__name__}: {first_line(inner)}")
