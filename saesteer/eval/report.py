"""Reports people read: Markdown (tables) + a self-contained HTML page (tables and interactive plots).

The HTML embeds plotly.js once, so it opens offline. Written atomically (temp file + rename).
"""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Report:
    """Collects sections; :meth:`write` renders ``<stem>.md`` and ``<stem>.html``."""

    title: str
    _md: list[str] = field(default_factory=list)
    _html: list[str] = field(default_factory=list)
    _n_figs: int = 0

    def heading(self, text: str, level: int = 2) -> Report:
        self._md.append(f"{'#' * level} {text}\n")
        self._html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str) -> Report:
        self._md.append(text.rstrip() + "\n")
        self._html.append(f"<p>{html.escape(text)}</p>")
        return self

    def code(self, text: str) -> Report:
        self._md.append(f"```\n{text.rstrip()}\n```\n")
        self._html.append(f"<pre>{html.escape(text)}</pre>")
        return self

    def table(self, df: Any, caption: str | None = None, floatfmt: str = ".3g") -> Report:
        """A pandas DataFrame as a Markdown table and an HTML table."""
        if caption:
            self._md.append(f"**{caption}**\n")
            self._html.append(f"<p><b>{html.escape(caption)}</b></p>")
        self._md.append(df.to_markdown(index=False, floatfmt=floatfmt) + "\n")
        self._html.append(df.to_html(index=False, float_format=lambda v: format(v, floatfmt), border=0, classes="t"))
        return self

    def figure(self, fig: Any, caption: str | None = None) -> Report:
        """A plotly figure (HTML only; the Markdown points to the HTML report)."""
        self._n_figs += 1
        include = self._n_figs == 1
        self._html.append(fig.to_html(full_html=False, include_plotlyjs=include, default_width="100%"))
        if caption:
            self._html.append(f"<p><i>{html.escape(caption)}</i></p>")
            self._md.append(f"*Figure {self._n_figs}: {caption} (interactive plot in the HTML report).*\n")
        return self

    def write(self, out_dir: str | os.PathLike[str], stem: str = "report") -> tuple[Path, Path]:
        out = Path(out_dir)
        md_path, html_path = out / f"{stem}.md", out / f"{stem}.html"
        _atomic_write(md_path, f"# {self.title}\n\n" + "\n".join(self._md))
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table.t{border-collapse:collapse;font-size:0.9em}table.t td,table.t th{padding:2px 8px;"
            "border-bottom:1px solid #ddd;text-align:right}pre{background:#f6f6f6;padding:1em;overflow:auto}"
        )
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + "\n".join(self._html) + "</body></html>"
        )
        _atomic_write(html_path, page)
        return md_path, html_path
