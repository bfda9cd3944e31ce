"""A tiny random transformers model (Gemma 3 architecture, 2 layers, d_model 64, byte tokenizer).

The transformer-lens tiny model has no transformers twin, so the transformers backend is tested and
benchmarked on this one. Built in code, no downloads, a few milliseconds per forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TINY_HF_ID = "tiny-hf-gemma3"


def make_tiny_hf_model(
    seed: int = 0, *, n_layers: int = 2, d_model: int = 64
) -> tuple[Any, PreTrainedTokenizerFast]:
    """``(Gemma3ForCausalLM, tokenizer)`` with random weights; ``model.saesteer_model_id`` is set."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from saesteer.testing.tiny import make_byte_tokenizer

    tok = make_byte_tokenizer()
    tok.padding_side = "left"
    cfg = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=d_model,
        intermediate_size=2 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=16,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(cfg).eval()
    model.saesteer_model_id = TINY_HF_ID
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok
