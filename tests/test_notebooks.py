"""Execute the notebooks in order on the tiny model so they cannot rot (they share one tmp index db)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ORDER = ["01_build_index", "02_explore_features", "03_steer_and_evaluate", "04_export", "05_any_dataset"]
TINY_ENV = {
    "SAESTEER_NB_MODEL": "tiny-random",
    "SAESTEER_NB_SAE": "tiny",
    "SAESTEER_NB_MAX_DOCS": "40",
    "SAESTEER_NB_RANDOM_SEQS": "32",
    "SAESTEER_NB_LANGS": "en,fr,de,es",
    "SAESTEER_NB_N_PROMPTS": "2",
    "SAESTEER_NB_MAX_NEW_TOKENS": "4",
    "SAESTEER_NB_DIFFMEAN_TEXTS": "10",
    "SAESTEER_NB_STRENGTH": "1.0",  # the tiny random model needs a larger push than Gemma
    "SAESTEER_NB_EVAL_STRENGTHS": "0.5,1.0",
}


def _kernel_or_skip() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip(
            "no 'python3' Jupyter kernel: run `.venv/bin/python -m ipykernel install --sys-prefix --name python3`"
        )


def test_notebooks_execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel_or_skip()
    from jupyter_client.kernelspec import NoSuchKernel

    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    # not under a folder named features_db: one in the cwd shadows the package schema (see report)
    db = tmp_path / "index" / "nb.duckdb"
    monkeypatch.setenv("SAESTEER_NB_DB", str(db))
    monkeypatch.setenv("SAESTEER_NB_FEATURESET", str(tmp_path / "fr.featureset.json"))
    monkeypatch.setenv("SAESTEER_NB_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("SAESTEER_NB_AUTO_OUT", str(tmp_path / "auto"))
    for name in ORDER:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} has stored outputs"
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        try:
            client.execute(env=dict(os.environ))
        except (NoSuchKernel, RuntimeError) as err:  # kernel failed to start (not a cell error)
            if isinstance(err, nbclient.exceptions.CellExecutionError):
                raise
            pytest.skip(f"no Jupyter kernel could start: {err}")
        if name == "01_build_index":
            assert db.is_file()
    assert (tmp_path / "fr.featureset.json").is_file()
    assert (tmp_path / "exports" / "fr.safetensors").is_file()
    assert (tmp_path / "auto" / "report.md").is_file()
