"""saesteer.models.forward: padding, residual capture and token scoring, the one home of each."""

from __future__ import annotations

import torch

from saesteer.models.forward import capture_residual, pad_batch, run_to_hooks, token_nll
from saesteer.models.hooks import validate_hook

HOOK = "blocks.1.hook_resid_pre"


def test_pad_batch_right_and_left():
    ids, mask = pad_batch([[5, 6, 7], [8]], 0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_batch([[5, 6, 7], [8]], 9, side="left", mask_dtype=torch.bool)
    assert ids.tolist() == [[5, 6, 7], [9, 9, 8]] and mask.tolist() == [[True] * 3, [False, False, True]]
    ids, _ = pad_batch([torch.tensor([1, 2])], 0, width=4)
    assert ids.tolist() == [[1, 2, 0, 0]] and ids.dtype == torch.long


def test_token_nll_scores_the_next_token():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 11, generator=g)
    ids = torch.randint(0, 11, (2, 4), generator=g)
    nll = token_nll(logits, ids)
    want = torch.stack([torch.stack([-torch.log_softmax(logits[b, t], -1)[ids[b, t + 1]] for t in range(3)])
                        for b in range(2)])
    assert nll.shape == (2, 3) and torch.allclose(nll, want)


def test_capture_and_run_to_hooks_match_the_full_forward(tiny_model):
    tokens = tiny_model.to_tokens(["hello world", "bonjour"], prepend_bos=True)
    _, cache = tiny_model.run_with_cache(tokens, names_filter=lambda n: n == HOOK)
    spec = validate_hook(tiny_model, HOOK)
    with torch.no_grad():
        assert torch.equal(capture_residual(tiny_model, tokens, spec), cache[HOOK])
    got = run_to_hooks(tiny_model, tokens, None, [HOOK], spec.stop_at_layer)
    assert torch.equal(got[HOOK], cache[HOOK])
