"""Torch's thread count follows the load: every core on a quiet machine, the cores others leave otherwise."""

from __future__ import annotations

import os

import pytest
import torch

from saesteer import threads
from saesteer.threads import adapt_threads, choose_threads, others_busy


@pytest.mark.parametrize(("cores", "busy", "want"), [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.5, 1), (2, 5.0, 1),
    (16, 0.0, 16), (16, 3.2, 13), (16, 3.6, 12), (1, 0.0, 1),
])
def test_choose_threads_leaves_the_busy_cores(cores, busy, want):
    assert choose_threads(cores, busy) == want


def test_others_busy_reads_proc_stat(tmp_path):
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat")
    busy = others_busy(0.05)
    assert busy is not None and 0.0 <= busy <= (os.cpu_count() or 1) + 0.5
    assert others_busy(0.01, stat=tmp_path / "missing") is None
    (tmp_path / "stat").write_text("intr 1 2 3\n")
    assert others_busy(0.01, stat=tmp_path / "stat") is None


def test_the_environment_fixes_the_thread_count(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SAESTEER_THREADS", "1")
        assert adapt_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("SAESTEER_THREADS")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        assert adapt_threads() == 1  # left as the user set it
    finally:
        torch.set_num_threads(before)


def test_adapt_threads_follows_the_measured_load(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("SAESTEER_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    try:
        monkeypatch.setattr(threads, "others_busy", lambda window=0.1: 3.0)
        assert adapt_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "others_busy", lambda window=0.1: 0.1)
        assert adapt_threads() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
