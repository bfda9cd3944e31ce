"""Progress that reads in any output: stages, their timings, plain lines when stderr is not a terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from saesteer.cli.progress import BuildStages, ProgressView
from saesteer.progress import ProgressEvent, Stages


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _plain_view(clock: Clock, interval: float = 5.0) -> tuple[ProgressView, io.StringIO]:
    buf = io.StringIO()
    return ProgressView(Console(file=buf, width=200), plain=True, interval=interval, clock=clock), buf


def test_stages_record_timings_and_events_in_order():
    clock, events = Clock(), []
    stages = Stages(events.append, clock=clock)
    with stages.stage("a", total=2) as st:
        clock.t = 1.5
        st.update(1)
        st.done("2 things")
    with pytest.raises(ValueError), stages.stage("b"):
        clock.t = 4.0
        raise ValueError
    assert stages.timings == {"a": 1.5, "b": 2.5}
    assert [(e.stage, e.kind) for e in events] == [("a", "start"), ("a", "update"), ("a", "end"), ("b", "start"), ("b", "end")]
    assert events[2] == ProgressEvent("a", "end", 1, 2, "2 things", 1.5, True)
    assert events[-1].ok is False
    assert stages.table()[-1] == {"stage": "total", "seconds": 4.0}


def test_plain_view_prints_start_and_end_and_throttles_updates():
    clock = Clock()
    view, buf = _plain_view(clock, interval=5.0)
    stages = Stages(view, clock=clock)
    with stages.stage("index", total=100, info="13 conditions") as st:
        for i in range(100):  # 100 updates over 20 s: at most one line per 5 s
            clock.t = i * 0.2
            st.update(i + 1, info=f"doc {i}")
        st.done("100 docs")
    lines = buf.getvalue().splitlines()
    assert lines[0].endswith("index: started (13 conditions, 100 steps)")
    assert lines[-1].endswith("index: done in 19.8 s (100/100; 100 docs)")
    updates = lines[1:-1]
    assert 3 <= len(updates) <= 4, updates
    assert "index: 26/100 doc 25 (5.0 s)" in updates[0]


def test_build_stages_one_stage_per_condition():
    from saesteer.index.build import BuildProgress

    clock = Clock()
    view, buf = _plain_view(clock, interval=0.0)
    stages = Stages(view, clock=clock)
    on_build = BuildStages(stages)
    on_build(BuildProgress("language=en", 0, 2, "skipped", 0, 0, 10))
    on_build(BuildProgress("language=fr", 1, 2, "start", 0, 0, 10))
    clock.t = 2.0
    on_build(BuildProgress("language=fr", 1, 2, "batch", 5, 100, 10))
    on_build(BuildProgress("language=fr", 1, 2, "written", 10, 200, 10))
    on_build(BuildProgress("feature_output", 0, 1, "feature_output", 0, 0, None))
    clock.t = 3.0
    on_build.close()
    out = buf.getvalue()
    assert "index language=en: done in 0.0 s (done earlier)" in out
    assert "index language=fr: done in 2.0 s (10/10; 10 docs, 200 tokens, 100 tok/s)" in out
    assert "index logit lens: done in 1.0 s" in out
    assert list(stages.timings) == ["index language=en", "index language=fr", "index logit lens"]


@pytest.mark.slow
def test_quickstart_prints_plain_stage_lines_when_stderr_is_not_a_terminal(tmp_path):
    """`saesteer quickstart ... 2>&1 | cat`: stage lines, the side by side before the evaluation, the timings."""
    args = ["quickstart", "--model", "tiny-random", "--sae", "tiny", "--db", str(tmp_path / "i.duckdb"),
            "--out", str(tmp_path / "out"), "--languages", "en,fr", "--show", "fr", "--max-docs", "4",
            "--n-random", "4", "--n-prompts", "1", "--eval-prompts", "1", "--ablation-texts", "2",
            "--max-new-tokens", "2"]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    proc = subprocess.run([sys.executable, "-m", "saesteer", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, timeout=900, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out
    stages = ["model load", "index", "selection", "vectors", "side by side", "exports", "evaluation", "ablation", "report"]
    for stage in stages:
        assert f"] {stage}: started" in out, stage
        assert f"] {stage}: done in " in out, stage
    assert out.index("steered → fr") < out.index("] evaluation: started")
    assert "stage timings" in out
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Stage timings" in report and "side by side" in report
