"""The repetition penalty (``GenerationConfig.repetition_penalty``): the CTRL rule on the generated tokens only,
the same in both backends (each equals a hand-written greedy loop one prompt at a time), batching-invariant,
and validated."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from saesteer.errors import CorpusError, SaesteerError
from saesteer.steer.generate import GenerationConfig, HFBackend, TLBackend, penalize_repeats
from saesteer.testing.tiny_hf import TINY_HF_ID, make_tiny_hf_model

PROMPTS = ["a much longer prompt than the others", "hi", "medium prompt", "x"]
N_NEW = 10
PENALTY = 1.8


@pytest.fixture(scope="module")
def hf_backend() -> HFBackend:
    hf, tok = make_tiny_hf_model(seed=3)
    return HFBackend(hf, tok, TINY_HF_ID)


def test_penalize_repeats_is_transformers_rule_past_the_prompt():
    from transformers import RepetitionPenaltyLogitsProcessor

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 40, generator=g)
    prompt = torch.randint(0, 40, (3, 5), generator=g)
    generated = torch.randint(0, 40, (3, 4), generator=g)
    want = RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=5)(torch.cat([prompt, generated], 1), logits.clone())
    got = penalize_repeats(logits, generated, 1.3)
    assert torch.equal(got, want)
    # by hand for one row: a token seen twice is penalised once, positives shrink, negatives grow
    seen = set(generated[0].tolist())
    for t in range(40):
        x = float(logits[0, t])
        expect = (x / 1.3 if x > 0 else x * 1.3) if t in seen else x
        assert float(got[0, t]) == pytest.approx(expect)
    assert torch.equal(penalize_repeats(logits, generated, 1.0), logits)
    assert torch.equal(penalize_repeats(logits, generated[:, :0], 1.3), logits)


def _greedy_by_hand(last_logits, ids: list[int], eos: int | None, penalty: float) -> tuple[int, ...]:
    out: list[int] = []
    for _ in range(N_NEW):
        logits = last_logits(ids + out)[None, :]
        if out:
            logits = penalize_repeats(logits, torch.tensor([out]), penalty)
        nxt = int(logits.argmax(-1))
        if nxt == eos:
            break
        out.append(nxt)
    return tuple(out)


@pytest.mark.parametrize("backend_name", ["hf", "tl"])
def test_each_backend_equals_a_greedy_loop_by_hand_in_batches(backend_name, hf_backend, tiny_model):
    if backend_name == "hf":
        backend, eos = hf_backend, hf_backend.tokenizer.eos_token_id

        def last(ids: list[int]) -> torch.Tensor:
            with torch.no_grad():
                return hf_backend.model(torch.tensor([ids])).logits[0, -1].float()
    else:
        backend = TLBackend(tiny_model)
        eos = backend.eos

        def last(ids: list[int]) -> torch.Tensor:
            with torch.no_grad():
                return tiny_model(torch.tensor([ids]))[0, -1].float()

    cfg = GenerationConfig(max_new_tokens=N_NEW, batch_size=3, repetition_penalty=PENALTY)
    got = [g.token_ids for g in backend.generate(PROMPTS, cfg)]
    want = [_greedy_by_hand(last, backend.prompt_ids(p), eos, PENALTY) for p in PROMPTS]
    assert got == want
    plain = [g.token_ids for g in backend.generate(PROMPTS, GenerationConfig(max_new_tokens=N_NEW, batch_size=3))]
    assert plain != got  # the penalty changed something (the tiny models repeat tokens unpenalised)
    assert any(len(set(p)) < len(p) for p in plain)


@pytest.mark.parametrize("bad", [0.9, 0.0, float("nan"), float("inf")])
def test_a_bad_penalty_is_one_line(bad):
    with pytest.raises(SaesteerError, match="repetition-penalty") as e:
        GenerationConfig(repetition_penalty=bad)
    assert "\n" not in str(e.value)


def test_samples_made_with_another_penalty_are_not_mixed(tmp_path):
    from saesteer.eval.samples import decoding_penalty, read_cells

    row = {"language": "none", "method": "unsteered", "strength": 0.0, "ids": "1 2", "text": "x"}
    path = tmp_path / "samples.csv"
    pd.DataFrame([{**row, "repetition_penalty": 1.3}]).to_csv(path, index=False)
    assert len(read_cells(path, 1, 1, 1.3)) == 1
    with pytest.raises(CorpusError, match=r"repetition-penalty 1\.3, not 1"):
        read_cells(path, 1, 1, 1.0)
    old = pd.DataFrame([row])  # a table from before the option: plain greedy
    assert decoding_penalty(old) == 1.0
    with pytest.raises(CorpusError, match="mix repetition penalties"):
        decoding_penalty(pd.DataFrame([{**row, "repetition_penalty": 1.3}, {**row, "repetition_penalty": 1.0}]))
