"""``--format lm-eval``: the file lm-evaluation-harness's ``steered`` model loads.

The round trip runs the real ``lm_eval`` package on a tiny local task (tests/data/lm_eval) with the tiny
transformers model: the steered run's log-likelihoods equal those of the plain ``hf`` model with
saesteer's own hook attached, and differ from the unsteered run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from saesteer.errors import ExportFormatError
from saesteer.steer.export import detect_format, export_vector, import_vector
from saesteer.steer.export.lmeval import lmeval_config, lmeval_hookpoint
from saesteer.steer.vector import Component, ModelInfo, SteeringVector

TASK_DIR = Path(__file__).parent / "data" / "lm_eval"
INFO = ModelInfo(id="tiny-hf-gemma3", d_model=64, n_layers=2, model_type="gemma3_text")


def _vec(hooks: list[str], *, scale: float = 3.0, seed: int = 0, **kw) -> SteeringVector:
    g = torch.Generator().manual_seed(seed)
    comps = tuple(Component(h, torch.randn(64, generator=g) * scale) for h in hooks)
    return SteeringVector(components=comps, model=INFO, name="v", **kw)


def test_hookpoints_are_the_decoder_layer_modules():
    assert lmeval_hookpoint("blocks.1.hook_resid_post") == "layers.1"
    assert lmeval_hookpoint("blocks.1.hook_resid_pre") == "layers.0"
    with pytest.raises(ExportFormatError, match="embedding"):
        lmeval_hookpoint("blocks.0.hook_resid_pre")


def test_config_is_one_entry_per_hook_with_the_strength_as_coefficient():
    v = _vec(["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], default_strength=0.25)
    cfg = lmeval_config(v)
    assert sorted(cfg) == ["layers.0", "layers.1"]
    for c in v.components:
        entry = cfg[lmeval_hookpoint(c.hook_name)]
        assert entry["action"] == "add" and entry["steering_coefficient"] == 0.25
        assert torch.equal(entry["steering_vector"], c.vector)
        assert entry["bias"] is None and entry["head_index"] is None
    assert lmeval_config(v, 2.0)["layers.0"]["steering_coefficient"] == 2.0
    ablate = _vec(["blocks.1.hook_resid_post"], operator="ablate")
    assert lmeval_config(ablate)["layers.1"] | {"steering_vector": None} == {
        "steering_vector": None, "steering_coefficient": 0.0, "action": "clamp", "bias": None, "head_index": None,
    }


@pytest.mark.parametrize(
    ("kw", "strength", "match"),
    [
        ({"operator": "norm_preserving_add"}, None, "no lm-eval equivalent"),
        ({"operator": "ablate"}, 0.5, "no lm-eval equivalent"),
        ({"positions": "generated"}, None, "every position"),
    ],
)
def test_what_lm_eval_cannot_express_is_refused(tmp_path, kw, strength, match):
    with pytest.raises(ExportFormatError, match=match):
        export_vector(_vec(["blocks.1.hook_resid_post"], **kw), tmp_path / "v.pt", "lm-eval", strength=strength)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ExportFormatError, match="another component"):
        lmeval_config(_vec(["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre"]))


def test_round_trip_with_the_sidecar_is_bit_exact_and_bare_files_import(tmp_path):
    v = _vec(["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], default_strength=0.5)
    path, side = export_vector(v, tmp_path / "v.pt", "lm-eval")
    assert detect_format(path) == "lm-eval" and side.name == "v.pt.saesteer.json"
    assert import_vector(path).bit_equal(v)
    side.unlink()
    with pytest.raises(Exception, match="model id"):
        import_vector(path)
    from saesteer.steer.export import ImportHints

    bare = import_vector(path, hints=ImportHints(model_id="tiny-hf-gemma3"))
    assert [c.hook_name for c in bare.components] == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    assert torch.allclose(bare.components[1].vector, v.components[1].vector * 0.5)


def _loglikelihoods(result: dict) -> list[float]:
    samples = sorted(result["samples"]["saesteer_tiny"], key=lambda s: s["doc_id"])
    return [float(r[0][0]) for s in samples for r in s["resps"]]


def test_lm_eval_steered_model_matches_saesteer_hook(tmp_path, monkeypatch):
    lm_eval = pytest.importorskip("lm_eval", reason="the lm-eval extra: pip install 'saesteer[lmeval]'")
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from saesteer.steer import steering
    from saesteer.testing.tiny_hf import make_tiny_hf_model

    hf, tok = make_tiny_hf_model(seed=3)
    model_dir = tmp_path / "tiny"
    hf.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    # resid_pre of layer 1 is lm-eval's layers.0 output, resid_post of layer 1 its layers.1 output
    vec = _vec(["blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"], scale=4.0, seed=7, default_strength=1.5)
    steer_path, _ = export_vector(vec, tmp_path / "v.pt", "lm-eval")

    monkeypatch.chdir(TASK_DIR)  # the task YAML names its JSONL relative to the working directory
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    tasks = TaskManager(include_path=str(TASK_DIR))
    common = {"device": "cpu", "batch_size": 1, "dtype": "float32"}

    def run(model) -> list[float]:
        return _loglikelihoods(
            lm_eval.simple_evaluate(model=model, tasks=["saesteer_tiny"], task_manager=tasks, log_samples=True)
        )

    plain = HFLM(pretrained=str(model_dir), **common)
    unsteered = run(plain)
    with steering(plain.model, vec):  # saesteer's own hook on the same transformers model
        hooked = run(plain)
    steered = run(lm_eval.api.registry.get_model("steered")(
        pretrained=str(model_dir), steer_path=str(steer_path), **common
    ))

    assert len(unsteered) == len(steered) == len(hooked) == 16  # every choice of the 6 docs
    assert all(math.isfinite(x) for x in steered)
    assert max(abs(a - b) for a, b in zip(steered, hooked, strict=True)) < 1e-3
    shift = [abs(a - b) for a, b in zip(steered, unsteered, strict=True)]
    assert sum(shift) / len(shift) > 0.1, shift  # the vector moves every log-likelihood, on average by > 0.1
