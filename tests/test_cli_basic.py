"""CLI basics: --help everywhere, --version, info on the tiny model, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from saesteer.cli.main import app


def _all_commands(cmd: click.Command, prefix: tuple[str, ...] = ()):
    yield prefix
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _all_commands(sub, (*prefix, name))


@pytest.mark.parametrize("path", list(_all_commands(get_command(app))), ids=lambda p: " ".join(p) or "root")
def test_help_everywhere(path):
    res = CliRunner().invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_version():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("saesteer ")


def test_info_tiny_json():
    res = CliRunner().invoke(app, ["info", "--model", "tiny-random", "--sae", "tiny", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["model"]["d_model"] == 64 and out["model"]["n_layers"] == 2
    assert out["sae"]["d_sae"] == 256 and out["hook"]["name"] == "blocks.1.hook_resid_pre"


def test_error_is_one_line_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "saesteer", "info", "--model", "tiny-random", "--sae", "tiny", "--hook", "blocks.9.hook_resid_post"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: unknown hook 'blocks.9.hook_resid_post'")
