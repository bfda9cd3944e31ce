"""Generation throughput: saesteer against plain transformers ``generate``, steered against unsteered, and
where the time goes, measured side by side in one run.

Same prompts (the evaluation's: the held-out English half-sentences of the bundled parallel corpus), greedy
decoding, the same number of new tokens for every row (EOS suppressed until ``max_new_tokens``); the
variants run interleaved, in a rotating order, so that machine load hits all of them alike:

- ``plain HF``: ``tokenizer(..., padding=True)`` (left padding) + ``model.generate`` in the given order, no
  saesteer code;
- ``unsteered``: :meth:`saesteer.steer.generate.HFBackend.generate` without steering;
- ``add``: the same with an additive vector at the default SAE's hook (``blocks.9.hook_resid_post`` on Gemma);
- ``swap``: the SAE clamp operator (``op=swap``: 50 features clamped, the SAE encoded/decoded per position).

Ratios: steered / unsteered (target >= 0.97) and saesteer unsteered / plain HF (target >= 1.0), from the
medians of the interleaved runs, with the best-run ratios beside them. The breakdown then says where a
generate call spends its time: the prefill against the decode steps, the decoder layers against the
unembedding (``lm_head``: 262k-token vocabulary on Gemma) against the rest (sampling, cache, Python), the
prompt padding of given-order against length-sorted batches, throughput by batch size, and the fluency
scoring (``continuation_nll``) against a naive full-logits forward.

    .venv/bin/python benchmarks/bench_steer.py                              # the tiny transformers model
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_steer.py --gemma --no-tiny --threads 1  # Gemma 3 270M

It also times 1 thread against every core under the load of the run (torch's spinning OpenMP threads
collapse when other processes share the cores: :mod:`saesteer.threads`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from saesteer.models.forward import pad_batch, token_nll
from saesteer.steer.generate import GenerationConfig, HFBackend, length_order
from saesteer.steer.vector import ClampSpec, Component, SteeringVector


def _add_vector(backend: HFBackend, hook: str) -> SteeringVector:
    v = torch.randn(backend.info.d_model, generator=torch.Generator().manual_seed(0))
    return SteeringVector(components=(Component(hook, v / v.norm()),), model=backend.info)


def _swap_vector(backend: HFBackend, hook: str, sae: Any, sae_id: str, k: int = 50) -> SteeringVector:
    feats = torch.randperm(int(sae.cfg.d_sae), generator=torch.Generator().manual_seed(0))[:k]
    w = sae.W_dec.detach()[feats].float()
    return SteeringVector(components=(Component(hook, w.sum(0)),), model=backend.info, operator="clamp",
                          clamp=ClampSpec(feats, torch.ones(k), sae_id))


def plain_generate(hf: Any, tok: Any, prompts: list[str], cfg: GenerationConfig) -> list[list[int]]:
    """What a user writes with transformers alone: tokenise, left-pad, generate, in the given order."""
    tok.padding_side = "left"
    out: list[list[int]] = []
    with torch.no_grad():
        for i in range(0, len(prompts), cfg.batch_size):
            enc = tok(prompts[i : i + cfg.batch_size], return_tensors="pt", padding=True)
            seq = hf.generate(**enc, max_new_tokens=cfg.max_new_tokens, min_new_tokens=cfg.min_new_tokens,
                              do_sample=False, pad_token_id=tok.pad_token_id, temperature=None, top_p=None,
                              top_k=None)
            out += seq[:, enc["input_ids"].shape[1] :].tolist()
    return out


def compare(
    backend: HFBackend, prompts: list[str], cfg: GenerationConfig, repeats: int,
    steers: dict[str, tuple[Any, Any]],
) -> dict[str, Any]:
    """Interleaved wall times of plain HF, saesteer unsteered and each steered variant."""
    runs: dict[str, Callable[[], Any]] = {
        "plain HF": lambda: plain_generate(backend.model, backend.tokenizer, prompts, cfg),
        "unsteered": lambda: backend.generate(prompts, cfg),
    }
    for name, (steer, sae) in steers.items():
        runs[name] = lambda steer=steer, sae=sae: backend.generate(prompts, cfg, steer=steer, sae=sae)
    warm = GenerationConfig(max_new_tokens=2, batch_size=cfg.batch_size)
    plain_generate(backend.model, backend.tokenizer, prompts[:2], warm)
    for steer, sae in steers.values():
        backend.generate(prompts[:2], warm, steer=steer, sae=sae)
    names = list(runs)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        for n in names[i % len(names) :] + names[: i % len(names)]:  # rotate the order
            t, c = time.perf_counter(), time.process_time()
            runs[n]()
            wall[n].append(time.perf_counter() - t)
            cpu[n].append(time.process_time() - c)
    plain = plain_generate(backend.model, backend.tokenizer, prompts, cfg)
    ours = [list(g.token_ids) for g in backend.generate(prompts, cfg)]
    n_tokens = len(prompts) * cfg.max_new_tokens
    return {"wall": wall, "tok_s": {n: n_tokens / statistics.median(w) for n, w in wall.items()},
            "cpu_tok_s": {n: n_tokens / statistics.median(c) for n, c in cpu.items()},
            "same_as_plain": sum(a == b for a, b in zip(plain, ours, strict=True)), "n": len(prompts)}


class _Timer:
    """Wall time inside a module's forward calls (pre/post hooks), split by the call's input length."""

    def __init__(self, module: torch.nn.Module, length_of: Callable[[Any, Any], int] | None,
                 follows: _Timer | None = None) -> None:
        self.spent: dict[str, float] = {"prefill": 0.0, "decode": 0.0}
        self._t = 0.0
        self._kind = "decode"

        def pre(_m: Any, args: Any, kwargs: Any) -> None:
            if follows is not None:  # the head runs once after each call of the stack: the stack's kind
                self._kind = follows._kind
            else:
                assert length_of is not None
                self._kind = "prefill" if length_of(args, kwargs) > 1 else "decode"
            self._t = time.perf_counter()

        def post(_m: Any, _a: Any, _k: Any, _o: Any) -> None:
            self.spent[self._kind] += time.perf_counter() - self._t

        self.handles = [module.register_forward_pre_hook(pre, with_kwargs=True),
                        module.register_forward_hook(post, with_kwargs=True)]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _len_of_stack(args: Any, kwargs: Any) -> int:
    ref = kwargs.get("input_ids", args[0] if args else None)
    ref = kwargs.get("inputs_embeds") if ref is None else ref
    return int(ref.shape[1]) if isinstance(ref, torch.Tensor) else 1


def breakdown(backend: HFBackend, prompts: list[str], cfg: GenerationConfig) -> dict[str, Any]:
    """Where one unsteered generate call spends its time, and what padding and batch size cost."""
    from saesteer.steer.hookpoints import decoder_stack

    hf = backend.model
    stack, _ = decoder_stack(hf)
    head = hf.get_output_embeddings()
    t_stack = _Timer(stack, _len_of_stack)
    t_head = _Timer(head, None, follows=t_stack)
    try:
        t = time.perf_counter()
        backend.generate(prompts, cfg)
        total = time.perf_counter() - t
    finally:
        t_stack.remove()
        t_head.remove()
    # the decoder stack's hooks enclose its layers only; the head runs after the stack returns
    out: dict[str, Any] = {"total": total, "stack": t_stack.spent, "head": t_head.spent}
    out["rest"] = total - sum(t_stack.spent.values()) - sum(t_head.spent.values())
    lengths = [len(backend.prompt_ids(p)) for p in prompts]

    def pad_share(order: list[int]) -> float:
        cells = real = 0
        for i in range(0, len(order), cfg.batch_size):
            lens = [lengths[j] for j in order[i : i + cfg.batch_size]]
            cells += max(lens) * len(lens)
            real += sum(lens)
        return 1 - real / cells

    out["pad_given"] = pad_share(list(range(len(prompts))))
    out["pad_sorted"] = pad_share(length_order(lengths))
    out["prompt_tokens"] = sum(lengths) / len(lengths)
    return out


def batch_scan(backend: HFBackend, prompts: list[str], cfg: GenerationConfig, sizes: list[int]) -> dict[int, float]:
    out = {}
    for b in sizes:
        c = GenerationConfig(max_new_tokens=cfg.max_new_tokens, min_new_tokens=cfg.min_new_tokens, batch_size=b)
        t = time.perf_counter()
        backend.generate(prompts, c)
        out[b] = len(prompts) * cfg.max_new_tokens / (time.perf_counter() - t)
    return out


def thread_compare(backend: HFBackend, prompts: list[str], cfg: GenerationConfig, repeats: int) -> dict[str, Any]:
    """Unsteered tok/s with 1 thread and with every core, interleaved, under this run's load, and what
    :func:`saesteer.threads.adapt_threads` would pick now."""
    import os

    from saesteer.threads import choose_threads, others_busy

    before = torch.get_num_threads()
    cores = os.cpu_count() or 1
    wall: dict[int, list[float]] = {1: [], cores: []}
    try:
        for i in range(repeats):
            for n in (1, cores) if i % 2 == 0 else (cores, 1):
                torch.set_num_threads(n)
                t = time.perf_counter()
                backend.generate(prompts, cfg)
                wall[n].append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(before)
    busy = others_busy()
    return {"tok_s": {n: len(prompts) * cfg.max_new_tokens / statistics.median(w) for n, w in wall.items()},
            "busy": busy, "pick": choose_threads(cores, busy) if busy is not None else None,
            "load": os.getloadavg()[0]}


def naive_nll(backend: HFBackend, prompts: list[str], conts: list[list[int]], batch_size: int) -> list[float]:
    """The reference scoring: full logits at every position of right-padded batches in the given order."""
    seqs = [(backend.prompt_ids(p), c) for p, c in zip(prompts, conts, strict=True)]
    out = []
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i : i + batch_size]
            ids, mask = pad_batch([p + c for p, c in chunk], int(backend.tokenizer.pad_token_id))
            nll = token_nll(backend.model(input_ids=ids, attention_mask=mask).logits, ids)
            out += [float(nll[j, len(p) - 1 : len(p) + len(c) - 1].double().sum()) for j, (p, c) in enumerate(chunk)]
    return out


def nll_compare(backend: HFBackend, prompts: list[str], cfg: GenerationConfig, repeats: int) -> dict[str, Any]:
    conts = [list(g.token_ids) for g in backend.generate(prompts, cfg)]
    alone = [""] * len(prompts)
    backend.continuation_nll(alone[:2], conts[:2])  # decides its path once (a small check against the logits)
    wall: dict[str, list[float]] = {"naive": [], "saesteer": []}
    for _ in range(repeats):
        for name in ("naive", "saesteer"):
            t = time.perf_counter()
            if name == "naive":
                ref = naive_nll(backend, alone, conts, cfg.batch_size)
            else:
                got = backend.continuation_nll(alone, conts, batch_size=cfg.batch_size)
            wall[name].append(time.perf_counter() - t)
    diff = max(abs(a - s) / max(abs(a), 1e-9) for a, (s, _) in zip(ref, got, strict=True))
    return {"naive_s": statistics.median(wall["naive"]), "ours_s": statistics.median(wall["saesteer"]),
            "max_rel_diff": diff, "tokens": sum(map(len, conts)),
            "path": "unembedding at scored positions" if backend._scorer.fast else "full forward"}


def report(label: str, backend: HFBackend, prompts: list[str], cfg: GenerationConfig, repeats: int,
           steers: dict[str, tuple[Any, Any]], sizes: list[int]) -> None:
    print(f"\n== {label}: {len(prompts)} prompts x {cfg.max_new_tokens} new tokens, batch {cfg.batch_size}, "
          f"{torch.get_num_threads()} thread(s), {repeats} interleaved repeats", flush=True)
    res = compare(backend, prompts, cfg, repeats, steers)
    tok = res["tok_s"]
    ctok = res["cpu_tok_s"]
    print(f"{'variant':<12} {'tok/s (median wall)':>20} {'tok/s (best wall)':>18} {'tok/s (median CPU time)':>24}")
    for n, w in res["wall"].items():
        print(f"{n:<12} {tok[n]:>20.2f} {len(prompts) * cfg.max_new_tokens / min(w):>18.2f} {ctok[n]:>24.2f}")
    best = {n: min(w) for n, w in res["wall"].items()}
    for n in steers:
        print(f"ratio {n} / unsteered: {tok[n] / tok['unsteered']:.3f} wall (best runs "
              f"{best['unsteered'] / best[n]:.3f}), {ctok[n] / ctok['unsteered']:.3f} CPU time; target >= 0.97")
    print(f"ratio saesteer unsteered / plain HF: {tok['unsteered'] / tok['plain HF']:.3f} wall (best runs "
          f"{best['plain HF'] / best['unsteered']:.3f}), {ctok['unsteered'] / ctok['plain HF']:.3f} CPU time; "
          "target >= 1.0")
    print("(CPU time: this process's, all threads; on a shared machine it is steadier than wall time)")
    print(f"greedy continuations identical to plain HF: {res['same_as_plain']}/{res['n']}", flush=True)

    b = breakdown(backend, prompts, cfg)
    tot = b["total"]
    pre = b["stack"]["prefill"] + b["head"]["prefill"]
    dec = b["stack"]["decode"] + b["head"]["decode"]
    print(f"breakdown of one unsteered call ({tot:.2f} s): prefill {pre / tot:.1%} "
          f"(layers {b['stack']['prefill'] / tot:.1%}, lm_head {b['head']['prefill'] / tot:.1%}); "
          f"decode {dec / tot:.1%} (layers {b['stack']['decode'] / tot:.1%}, lm_head {b['head']['decode'] / tot:.1%}); "
          f"rest (sampling, cache, Python) {b['rest'] / tot:.1%}")
    print(f"prompt padding (prefill positions that are pads): given order {b['pad_given']:.1%}, "
          f"length-sorted {b['pad_sorted']:.1%} (mean prompt {b['prompt_tokens']:.1f} tokens)")
    scan = batch_scan(backend, prompts, cfg, sizes)
    print("tok/s by batch size: " + ", ".join(f"{k}: {v:.2f}" for k, v in scan.items()), flush=True)
    th = thread_compare(backend, prompts, cfg, 2)
    print("tok/s by torch threads under this run's load: "
          + ", ".join(f"{k}: {v:.2f}" for k, v in th["tok_s"].items())
          + f" (load average {th['load']:.1f}; other processes keep {th['busy']:.1f} cores busy now: "
            f"saesteer's CLI would use {th['pick']} thread(s))", flush=True)
    nll = nll_compare(backend, prompts, cfg, max(1, repeats // 2))
    print(f"fluency scoring ({nll['tokens']} continuation tokens, alone after BOS): saesteer {nll['ours_s']:.3f} s, "
          f"naive full logits {nll['naive_s']:.3f} s, ratio naive / saesteer {nll['naive_s'] / nll['ours_s']:.2f}; "
          f"max relative NLL difference {nll['max_rel_diff']:.1e} (saesteer path: {nll['path']})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemma", action="store_true", help="also benchmark Gemma 3 270M")
    ap.add_argument("--no-tiny", action="store_true", help="skip the tiny model")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--gemma-repeats", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--gemma-tokens", type=int, default=16)
    ap.add_argument("--gemma-prompts", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=None, help="default: every prompt in one batch")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1: steadier on a shared machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from saesteer.eval.parallel import bundled_parallel_prompts

    prompts = [p.prompt for p in bundled_parallel_prompts()]
    if not args.no_tiny:
        from saesteer.testing.tiny import make_tiny_sae
        from saesteer.testing.tiny_hf import TINY_HF_ID, make_tiny_hf_model

        hf, tok = make_tiny_hf_model()
        be = HFBackend(hf, tok, TINY_HF_ID)
        hook = "blocks.1.hook_resid_post"
        sae = make_tiny_sae(d_in=be.info.d_model, hook_name=hook, model_name=TINY_HF_ID)
        from saesteer.saes.loading import sae_source

        steers = {"add": ((_add_vector(be, hook), 1.0), None),
                  "swap": ((_swap_vector(be, hook, sae, sae_source(sae).id, k=8), 1.0), sae)}
        ps = prompts[: args.prompts]
        cfg = GenerationConfig(max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                               batch_size=args.batch_size or len(ps))
        report("tiny transformers model", be, ps, cfg, args.repeats, steers, sorted({1, 4, len(ps)}))
    if args.gemma:
        from saesteer.saes import load_sae

        t = time.perf_counter()
        be = HFBackend.load("gemma-3-270m")
        sae = load_sae("default")
        print(f"\nGemma 3 270M + default SAE loaded in {time.perf_counter() - t:.1f} s", flush=True)
        hook = str(sae.cfg.metadata.hook_name)
        steers = {"add": ((_add_vector(be, hook), 0.06 * 6618.0), None),
                  "swap": ((_swap_vector(be, hook, sae, "default"), 1.0), sae)}
        ps = prompts[: args.gemma_prompts]
        cfg = GenerationConfig(max_new_tokens=args.gemma_tokens, min_new_tokens=args.gemma_tokens,
                               batch_size=args.batch_size or len(ps))
        report("Gemma 3 270M", be, ps, cfg, args.gemma_repeats, steers, sorted({1, 4, len(ps)}))


if __name__ == "__main__":
    main()
