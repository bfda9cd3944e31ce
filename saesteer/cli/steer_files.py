"""``saesteer steer export|import|info``: vectors as files in other tools' formats (registered by
:mod:`saesteer.cli.steer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from saesteer.cli.common import JsonOpt, console, emit_json


def export_cmd(
    vector: Annotated[Path, typer.Argument(help="A native steering vector (.safetensors).")],
    fmt: Annotated[str, typer.Option("--format", "-F", help="native | gguf | neuronpedia | npy | lm-eval.")] = "gguf",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output file (default: the vector's name with the format's suffix)."
        ),
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(
            "--strength", help="Default strength for the target tool (GGUF: baked into the tensors)."
        ),
    ] = None,
) -> None:
    """Export a vector: native safetensors, llama.cpp GGUF (direction.N), Neuronpedia JSON, numpy, or
    lm-evaluation-harness's steered-model file (.pt)."""
    from saesteer.steer.export import export_vector, get_format, load_vector

    vec = load_vector(vector)
    f = get_format(fmt)
    target = out or vector.with_suffix(f.suffixes[0])
    if target.resolve() == vector.resolve():
        target = vector.with_name(f"{vector.stem}.{fmt}{f.suffixes[0]}")
    written = export_vector(vec, target, fmt, strength=strength)
    for p in written:
        console.print(f"wrote {p}")
    if fmt == "gguf":
        from saesteer.steer.export.llamacpp import gguf_layer_for_hook

        for c in vec.components:
            console.print(f"  {c.hook_name} -> direction.{gguf_layer_for_hook(c.hook_name)}")
    if fmt == "lm-eval":
        from saesteer.steer.export.lmeval import lmeval_hookpoint

        for c in vec.components:
            console.print(f"  {c.hook_name} -> {lmeval_hookpoint(c.hook_name)}")
        console.print(
            f"  lm_eval --model steered --model_args pretrained=MODEL,steer_path={written[0]} --tasks TASK"
        )


def import_cmd(
    path: Annotated[
        Path, typer.Argument(help="A vector file: GGUF control vector, Neuronpedia JSON, .npy or native.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Native output (.safetensors).")],
    fmt: Annotated[
        str | None, typer.Option("--format", "-F", help="Format (default: detected from the content).")
    ] = None,
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="The model the vector is for, if the file does not say.")
    ] = None,
    n_layers: Annotated[
        int | None, typer.Option("--n-layers", help="The model's layer count (enables range checks).")
    ] = None,
    hook: Annotated[
        str | None, typer.Option("--hook", help="Hook name(s) for a bare .npy, comma-separated.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
) -> None:
    """Import a vector from another format into the native format."""
    from saesteer.steer.export import ImportHints, import_vector, save_vector

    vec = import_vector(
        path, fmt, ImportHints(model_id=model_id, n_layers=n_layers, hook_name=hook, name=name)
    )
    p = save_vector(vec, out)
    print_summary(vec, f"wrote {p}")


def info(
    vector: Annotated[Path, typer.Argument(help="A steering vector file (any supported format).")],
    as_json: JsonOpt = False,
) -> None:
    """Show a vector's manifest: hooks, layers, operator, positions, scale and provenance."""
    from saesteer.steer.export import import_vector

    vec = import_vector(vector)
    if as_json:
        emit_json(vec.manifest())
        return
    print_summary(vec, str(vector))


def print_summary(vec: Any, title: str) -> None:
    man = vec.manifest()
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("name", vec.name)
    t.add_row("model", f"{vec.model.id} (d_model {vec.model.d_model}, {vec.model.n_layers} layers)")
    t.add_row("operator / positions", f"{vec.operator} / {vec.positions}")
    t.add_row("scale", f"{vec.scale_mode}, default strength {vec.default_strength:g}")
    baked = (man["provenance"].get("imported_from") or {}).get("baked_strength")
    if isinstance(baked, (int, float)) and baked != 1:
        t.add_row(
            "baked-in strength",
            f"{baked:g}: the file's tensors are the original vector x {baked:g}, so strength 1 here acts like "
            f"strength {baked:g} of the original",
        )
    for c in man["components"]:
        tn = f", typical norm {c['typical_norm']:.4g}" if c["typical_norm"] else ""
        t.add_row(c["hook_name"], f"layer {c['layer']} {c['hook_semantics']}, norm {c['norm']:.4g}{tn}")
    prov = man["provenance"]
    t.add_row("method", str(prov.get("method", "")))
    if "features" in prov:
        t.add_row("features", f"{len(prov['features'])}: {', '.join(map(str, prov['features'][:12]))}")
    for key in ("target", "build_id", "others"):
        if prov.get(key):
            t.add_row(key, str(prov[key]))
    console.print(t)
