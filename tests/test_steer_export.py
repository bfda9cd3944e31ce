"""Export/import: bit-exact round trips for every format, the llama.cpp layer mapping, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from saesteer.errors import DimensionMismatchError, ExportFormatError, SteeringVectorError
from saesteer.steer.export import (
    ImportHints,
    detect_format,
    export_vector,
    import_vector,
    load_vector,
    save_vector,
)
from saesteer.steer.export.interop import (
    RepengControlVector,
    from_repeng,
    from_steering_vectors,
    to_repeng,
    to_steering_vectors,
)
from saesteer.steer.export.llamacpp import gguf_layer_for_hook, hook_for_gguf_layer, read_control_vector
from saesteer.steer.vector import ClampSpec, Component, ModelInfo, SteeringVector

INFO = ModelInfo(id="gemma-3-270m", d_model=16, n_layers=18, model_type="gemma3_text", weights_hash="abc")


def _vec(hooks: list[str], seed: int = 0, **kw) -> SteeringVector:
    g = torch.Generator().manual_seed(seed)
    comps = tuple(Component(h, torch.randn(16, generator=g) * 123.456, 98.7 + i) for i, h in enumerate(hooks))
    prov = {
        "method": "sae_features",
        "features": [1, 2, 3],
        "scores": {"auc": [0.1, 0.2, 0.3]},
        "build_id": "b1",
    }
    return SteeringVector(components=comps, model=INFO, provenance=prov, name="fr", **kw)


@pytest.fixture
def multi() -> SteeringVector:
    return _vec(["blocks.3.hook_resid_post", "blocks.6.hook_resid_pre", "blocks.9.hook_resid_post"])


def test_native_round_trip_is_bit_exact(tmp_path, multi):
    path = save_vector(multi, tmp_path / "v.safetensors")
    back = load_vector(path)
    assert back.bit_equal(multi) and back.manifest() == multi.manifest()
    clamp = SteeringVector(
        components=(Component("blocks.6.hook_resid_post", torch.randn(16)),),
        model=INFO,
        operator="clamp",
        positions="generated",
        clamp=ClampSpec(torch.tensor([5, 9]), torch.tensor([1.5, 3.25]), "default"),
    )
    assert load_vector(save_vector(clamp, tmp_path / "c.safetensors")).bit_equal(clamp)
    assert detect_format(path) == "native"


def test_gguf_round_trip_is_bit_exact(tmp_path, multi):
    (path,) = export_vector(multi, tmp_path / "v.gguf", "gguf")
    back = import_vector(path)
    assert back.bit_equal(multi)
    assert detect_format(path) == "gguf"


def test_gguf_tensors_equal_the_vector_at_the_documented_layer(tmp_path, multi):
    (path,) = export_vector(multi, tmp_path / "v.gguf", "gguf")
    directions, fields = read_control_vector(path)
    assert fields["general.architecture"] == "controlvector"
    assert fields["controlvector.model_hint"] == "gemma3_text"
    assert fields["controlvector.layer_count"] == 3
    # blocks.L.hook_resid_post -> direction.L ; blocks.L.hook_resid_pre -> direction.(L-1)
    assert sorted(directions) == [3, 5, 9]
    assert torch.equal(directions[3], multi.component("blocks.3.hook_resid_post").vector)
    assert torch.equal(directions[5], multi.component("blocks.6.hook_resid_pre").vector)
    assert torch.equal(directions[9], multi.component("blocks.9.hook_resid_post").vector)


def test_gguf_layer_mapping_and_direction_zero():
    assert gguf_layer_for_hook("blocks.1.hook_resid_post") == 1
    assert gguf_layer_for_hook("blocks.17.hook_resid_post") == 17
    assert gguf_layer_for_hook("blocks.2.hook_resid_pre") == 1
    assert hook_for_gguf_layer(4) == "blocks.4.hook_resid_post"
    for hook in ("blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.0.hook_resid_pre"):
        with pytest.raises(ExportFormatError, match=r"rejects direction\.0"):
            gguf_layer_for_hook(hook)
    with pytest.raises(ExportFormatError, match=r"rejects direction\.0"):
        hook_for_gguf_layer(0)


def test_gguf_rejects_non_additive_vectors(tmp_path):
    v = _vec(["blocks.3.hook_resid_post"], operator="ablate")
    with pytest.raises(ExportFormatError, match="only operator 'add' with positions 'all'"):
        export_vector(v, tmp_path / "v.gguf", "gguf")
    with pytest.raises(ExportFormatError, match="positions 'all'"):
        export_vector(_vec(["blocks.3.hook_resid_post"], positions="prompt"), tmp_path / "v.gguf", "gguf")
    assert not (tmp_path / "v.gguf").exists()


def test_gguf_baked_strength_and_foreign_files(tmp_path):
    import gguf

    v = _vec(["blocks.4.hook_resid_post"])
    (path,) = export_vector(v, tmp_path / "v.gguf", "gguf", strength=0.5)
    directions, _ = read_control_vector(path)
    assert torch.equal(directions[4], v.components[0].vector * 0.5)
    back = import_vector(path)
    assert back.scale_mode == "raw" and back.provenance["imported_from"]["baked_strength"] == 0.5
    assert torch.equal(back.components[0].vector, v.components[0].vector * 0.5)

    # a repeng-style file without saesteer metadata
    w = gguf.GGUFWriter(str(tmp_path / "repeng.gguf"), "controlvector")
    w.add_string("controlvector.model_hint", "gemma3_text")
    w.add_uint32("controlvector.layer_count", 1)
    w.add_tensor("direction.7", np.arange(16, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    foreign = import_vector(tmp_path / "repeng.gguf", hints=ImportHints(model_id="gemma-3-270m", n_layers=18))
    assert foreign.hooks == ["blocks.7.hook_resid_post"] and foreign.model.id == "gemma-3-270m"
    assert torch.equal(foreign.components[0].vector, torch.arange(16, dtype=torch.float32))

    w = gguf.GGUFWriter(str(tmp_path / "zero.gguf"), "controlvector")
    w.add_tensor("direction.0", np.ones(16, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ExportFormatError, match=r"direction\.0 is invalid"):
        import_vector(tmp_path / "zero.gguf")

    w = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "llama")
    w.add_tensor("token_embd.weight", np.ones((4, 16), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ExportFormatError, match="architecture 'llama', not a control vector"):
        import_vector(tmp_path / "model.gguf")


def test_neuronpedia_round_trip_and_payload(tmp_path):
    v = _vec(["blocks.5.hook_resid_post"])
    path, side = export_vector(v, tmp_path / "v.json", "neuronpedia", strength=4.0)
    payload = json.loads(path.read_text())
    assert set(payload) == {
        "modelId",
        "layerNumber",
        "hookType",
        "vector",
        "vectorDefaultSteerStrength",
        "vectorLabel",
    }
    assert (
        payload["hookType"] == "hook_resid_pre" and payload["layerNumber"] == 6
    )  # resid_post 5 == resid_pre 6
    assert payload["vectorDefaultSteerStrength"] == 4.0 and payload["modelId"] == "gemma-3-270m"
    back = import_vector(path)
    assert back.bit_equal(v.with_(default_strength=4.0))
    side.unlink()  # without the manifest: the same numbers at the same point of the residual stream
    with pytest.raises(DimensionMismatchError, match="16 values but model 'gemma-3-270m' has d_model=640"):
        import_vector(path)  # the file names a model saesteer knows: its width is checked at import
    bare = import_vector(path, hints=ImportHints(model_id="width-16-model"))
    assert bare.hooks == ["blocks.6.hook_resid_pre"] and bare.default_strength == 4.0
    assert torch.equal(bare.components[0].vector, v.components[0].vector)
    with pytest.raises(ExportFormatError, match="last layer"):
        export_vector(_vec(["blocks.17.hook_resid_post"]), tmp_path / "w.json", "neuronpedia")
    with pytest.raises(ExportFormatError, match="one layer"):
        export_vector(
            _vec(["blocks.2.hook_resid_post", "blocks.3.hook_resid_post"]), tmp_path / "w.json", "neuronpedia"
        )


def test_npy_round_trip_and_bare_arrays(tmp_path, multi):
    path, side = export_vector(multi, tmp_path / "v.npy", "npy")
    assert np.load(path).shape == (3, 16)
    assert import_vector(path).bit_equal(multi)
    side.unlink()
    with pytest.raises(SteeringVectorError, match="pass 3 hook name"):
        import_vector(path)
    hooks = ",".join(multi.hooks)
    bare = import_vector(path, hints=ImportHints(model_id="gemma-3-270m", hook_name=hooks))
    for a, b in zip(bare.components, multi.components, strict=True):
        assert a.hook_name == b.hook_name and torch.equal(a.vector, b.vector)


def test_repeng_and_steering_vectors_objects(multi):
    cv = to_repeng(multi)
    assert isinstance(cv, RepengControlVector) or type(cv).__name__ == "ControlVector"
    assert cv.model_type == "gemma3_text" and sorted(cv.directions) == [3, 5, 9]
    assert all(d.dtype == np.float32 for d in cv.directions.values())
    np.testing.assert_array_equal(cv.directions[5], multi.component("blocks.6.hook_resid_pre").vector.numpy())
    back = from_repeng(cv, model_id="gemma-3-270m", n_layers=18)
    assert back.hooks == ["blocks.3.hook_resid_post", "blocks.5.hook_resid_post", "blocks.9.hook_resid_post"]
    assert torch.equal(
        back.component("blocks.5.hook_resid_post").vector, multi.component("blocks.6.hook_resid_pre").vector
    )

    sv = to_steering_vectors(multi, strength=2.0)
    assert sv.layer_type == "decoder_block" and sorted(sv.layer_activations) == [3, 5, 9]
    assert torch.equal(sv.layer_activations[9], multi.component("blocks.9.hook_resid_post").vector * 2.0)
    again = from_steering_vectors(to_steering_vectors(multi), model_id="gemma-3-270m")
    assert torch.equal(
        again.component("blocks.3.hook_resid_post").vector, multi.component("blocks.3.hook_resid_post").vector
    )


def test_corrupt_and_foreign_files_get_clear_errors(tmp_path, multi):
    from safetensors.torch import save_file

    path = save_vector(multi, tmp_path / "v.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip a byte of the last tensor
    (tmp_path / "flipped.safetensors").write_bytes(bytes(data))
    with pytest.raises(SteeringVectorError, match="checksum: the file is corrupt"):
        load_vector(tmp_path / "flipped.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-40])
    with pytest.raises(SteeringVectorError, match="corrupt"):
        load_vector(tmp_path / "cut.safetensors")
    save_file({"W_dec": torch.zeros(4, 16)}, str(tmp_path / "sae.safetensors"))
    with pytest.raises(ExportFormatError, match="without a saesteer manifest"):
        load_vector(tmp_path / "sae.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ExportFormatError, match="not a steering vector saesteer can read"):
        import_vector(tmp_path / "junk.bin")
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(ExportFormatError, match="not a readable GGUF"):
        import_vector(tmp_path / "bad.gguf")
    with pytest.raises(ExportFormatError, match="no such file"):
        import_vector(tmp_path / "missing.gguf")
    with pytest.raises(ExportFormatError, match="unknown format"):
        export_vector(multi, tmp_path / "x", "onnx")


def test_failed_export_leaves_nothing_behind(tmp_path):
    v = _vec(["blocks.0.hook_resid_post"])
    with pytest.raises(ExportFormatError):
        export_vector(v, tmp_path / "v.gguf", "gguf")
    assert list(tmp_path.iterdir()) == []
