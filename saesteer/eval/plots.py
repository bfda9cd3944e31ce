"""Plotly figures for the evaluation report (built lazily; plotly is imported inside each function)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def accuracy_vs_strength(curves: pd.DataFrame) -> Any:
    """One panel per method: target-language accuracy against strength, one line per language,
    plus the mean over languages (bold)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    vec = curves[curves["method"] != "prompting"]
    methods = list(dict.fromkeys(vec["method"]))
    fig = make_subplots(rows=1, cols=max(len(methods), 1), subplot_titles=methods, shared_yaxes=True)
    for col, method in enumerate(methods, start=1):
        sub = vec[vec["method"] == method]
        for lang, grp in sub.groupby("language"):
            grp = grp.sort_values("strength")
            fig.add_trace(go.Scatter(x=grp["strength"], y=grp["accuracy"], mode="lines+markers", name=str(lang),
                                     legendgroup=str(lang), showlegend=col == 1, opacity=0.45), row=1, col=col)
        fig.update_xaxes(title_text="strength", type="log", row=1, col=col)
        mean = sub.groupby("strength")["accuracy"].mean().reset_index()
        if sub.groupby("strength")["language"].nunique().min() < sub["language"].nunique():
            continue  # searched strengths differ per language: no mean line
        fig.add_trace(go.Scatter(x=mean["strength"], y=mean["accuracy"], mode="lines+markers", name="mean",
                                 line={"width": 4, "color": "black"}, legendgroup="mean", showlegend=col == 1),
                      row=1, col=col)
    fig.update_yaxes(title_text="target-language accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_layout(height=420, title="Accuracy vs strength")
    return fig


def fluency_vs_accuracy(curves: pd.DataFrame, baseline_ppl: float, budget: float) -> Any:
    """Median perplexity against accuracy for every (language, method, strength): the trade-off."""
    import plotly.express as px

    fig = px.scatter(curves, x="ppl_median", y="accuracy", color="method",
                     symbol="fluent" if "fluent" in curves else "method",
                     hover_data=["language", "strength", "n"], log_x=True, title="Fluency vs accuracy")
    fig.add_vline(x=baseline_ppl, line_dash="dot", annotation_text="unsteered")
    fig.add_vline(x=budget * baseline_ppl, line_dash="dash", annotation_text=f"budget x{budget:g}")
    fig.update_layout(height=420, xaxis_title="median perplexity of the continuation (unsteered model)")
    return fig


def ablation_heatmap(matrix: pd.DataFrame) -> Any:
    """The ablation matrix: rows = ablated language direction, columns = evaluated language."""
    import plotly.express as px

    fig = px.imshow(matrix.to_numpy(), x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index],
                    color_continuous_scale="Reds", text_auto=".2f", aspect="auto",
                    labels={"x": "evaluated language", "y": "ablated direction", "color": "ΔCE (nats/token)"},
                    title="Cross-entropy increase when a language direction is ablated")
    fig.update_layout(height=120 + 32 * len(matrix))
    return fig
