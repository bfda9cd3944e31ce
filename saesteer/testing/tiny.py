"""Tiny random models and SAEs built in code, with no downloads.

Used by the unit tests, the CI runs of the notebooks, and ``--model tiny-random --sae tiny`` on the CLI,
so that every path can be exercised in seconds. The tokenizer is byte-level (any UTF-8 text encodes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer
    from transformers import PreTrainedTokenizerFast

    from saesteer.featureset import FeatureSet

TINY_D_MODEL = 64
TINY_N_LAYERS = 2
TINY_D_SAE = 256
TINY_HOOK = "blocks.1.hook_resid_pre"
_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def make_byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer: 4 special tokens (pad=0, eos=1, bos=2, unk=3) then the 256 byte symbols."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {s: i for i, s in enumerate(_SPECIALS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>",
        add_bos_token=True, name_or_path="saesteer-byte-tokenizer",
    )
    fast.init_kwargs.setdefault("name_or_path", "saesteer-byte-tokenizer")
    fast.init_kwargs["add_bos_token"] = True
    return fast


def make_tiny_model(seed: int = 0, n_layers: int = TINY_N_LAYERS, d_model: int = TINY_D_MODEL) -> HookedTransformer:
    """A random 2-layer ``HookedTransformer`` (d_model 64) with the byte tokenizer."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    tok = make_byte_tokenizer()
    cfg = HookedTransformerConfig(
        n_layers=n_layers, d_model=d_model, d_head=16, n_heads=d_model // 16, d_mlp=4 * d_model,
        d_vocab=len(tok), n_ctx=256, act_fn="gelu", normalization_type="LN",
        model_name=f"tiny-random:{seed}" if seed else "tiny-random", seed=seed, device="cpu",
        default_prepend_bos=True,
    )
    torch.manual_seed(seed)
    model = HookedTransformer(cfg, tokenizer=tok)
    model.eval()
    return model


def make_tiny_sae(
    d_in: int = TINY_D_MODEL, d_sae: int = TINY_D_SAE, hook_name: str = TINY_HOOK, seed: int = 0,
    model_name: str = "tiny-random",
) -> SAE:
    """A random ReLU sae-lens SAE with unit-norm decoder rows and a small negative bias (sparse codes)."""
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    g = torch.Generator().manual_seed(seed)
    cfg = StandardSAEConfig(
        d_in=d_in, d_sae=d_sae, dtype="float32", device="cpu",
        metadata=SAEMetadata(hook_name=hook_name, model_name=model_name, prepend_bos=True),
    )
    sae = StandardSAE(cfg)
    w_dec = torch.randn(d_sae, d_in, generator=g)
    w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        sae.W_dec.copy_(w_dec)
        sae.W_enc.copy_(w_dec.T.clone())
        sae.b_enc.fill_(-1.5)
        sae.b_dec.zero_()
    sae.eval()
    return sae


def tiny_feature_set(**overrides: Any) -> FeatureSet:
    """A feature set of three features of the tiny SAE at ``blocks.1.hook_resid_pre`` (override any field)."""
    from saesteer.featureset import FeatureSet

    fields: dict[str, Any] = dict(
        features=[3, 7, 11],
        target="language=fr",
        model_id="tiny-random",
        sae_id="tiny",
        hook_name=TINY_HOOK,
        scores={"auc": [0.9, 0.5, -0.2]},
        build_id="b1",
        filters=["density<0.1"],
    )
    fields.update(overrides)
    return FeatureSet(**fields)
