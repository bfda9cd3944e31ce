"""The multilingual training text: where it comes from and how it is read.

Four kinds of source, all available offline once ``scripts/fetch_training_text.sh`` has run:

- ``manpages``: Debian's translated manual pages (``manpages-<lang>``; ``manpages`` is the English
  original), one document per page;
- ``ddtp``: the Debian Description Translation Project's ``Translation-<lang>`` files, one document per
  package description;
- ``catalogues``: gettext ``.mo`` catalogues of a few packages (libc, coreutils, util-linux, ...), the
  translated messages grouped into documents of :data:`MESSAGES_PER_DOC`;
- ``bundled``: saesteer's own parallel corpus, train split only (lines 1-200; 201-250 stay held out).

Every source carries a :class:`SourceInfo` (Debian package, version, licence) for the report.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from saesteer.errors import CorpusError
from saesteer.paths import package_data
from saesteer.train.textclean import (
    LangClassifier,
    clean_message,
    ddtp_descriptions,
    groff_paragraphs,
    is_language,
    looks_like_prose,
    read_mo,
)

log = logging.getLogger(__name__)

LANGS: tuple[str, ...] = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh")
# Debian locale directory / DDTP suffix -> saesteer language code (simplified Chinese only).
LOCALE_TO_LANG = {
    "fr": "fr",
    "de": "de",
    "es": "es",
    "it": "it",
    "pt": "pt",
    "pt_BR": "pt",
    "nl": "nl",
    "pl": "pl",
    "ru": "ru",
    "tr": "tr",
    "id": "id",
    "zh_CN": "zh",
    "en": "en",
}
BUNDLED_TRAIN_LINES = 200  # lines 1-200 of saesteer/corpus/data/<lang>.txt; 201-250 are held out
MESSAGES_PER_DOC = 12
# Catalogue messages in English come from the msgids of this locale's catalogues.
_EN_MSGID_LOCALE = "de"


@dataclass(frozen=True)
class Candidate:
    """A document not yet read: its language, source key, stable id (used for the held-out split) and a
    loader that returns its cleaned text, or ``None`` if nothing usable is left after cleaning.

    Reading is lazy because the archive holds far more text than one training run uses: only the
    documents drawn for the run are decompressed, stripped and language-checked.
    """

    lang: str
    source: str
    doc_id: str
    load: Callable[[], str | None]


@dataclass(frozen=True)
class SourceInfo:
    """Provenance of a source, as listed in the report."""

    key: str  # e.g. "manpages-fr", "ddtp", "catalogue:coreutils", "bundled"
    kind: str  # "manpages" | "ddtp" | "catalogues" | "bundled"
    package: str
    version: str
    licence: str
    origin: str


def package_version(pkg_dir: Path) -> str:
    """The ``Version:`` of an extracted package (from ``DEBIAN/control``, written by the fetch script)."""
    control = pkg_dir / "DEBIAN" / "control"
    if control.is_file():
        for line in control.read_text(errors="replace").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def package_licence(pkg_dir: Path, package: str) -> str:
    """The licences named in ``usr/share/doc/<package>/copyright`` (DEP-5 ``License:`` fields first, then
    ``/usr/share/common-licenses/<name>`` references), comma-separated; ``"unknown"`` if none is named."""
    path = pkg_dir / "usr" / "share" / "doc" / package / "copyright"
    if not path.is_file():
        return "unknown (no copyright file in the package)"
    text = path.read_text(errors="replace")
    names: list[str] = []
    for m in re.finditer(r"^License:[ \t]*(\S[^\n]*)$", text, flags=re.M):
        names.append(m.group(1).strip())
    for m in re.finditer(r"/usr/share/common-licenses/([A-Za-z0-9+-]+(?:\.[0-9]+)?)", text):
        names.append(m.group(1))
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return ", ".join(seen[:4]) if seen else "unknown (see the copyright file)"


def _read_text(path: Path) -> str:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _filter_paragraphs(paras: list[str], lang: str, classify: LangClassifier | None) -> list[str]:
    keep = [p for p in paras if looks_like_prose(p, lang)]
    if classify is not None:
        keep = [p for p in keep if is_language(p, lang, classify)]
    return keep


def manpage_candidates(
    pkgs_root: Path, classify: LangClassifier | None
) -> Iterator[tuple[SourceInfo, Candidate]]:
    """One candidate per page of every extracted ``manpages*`` package under ``pkgs_root``."""
    for pkg_dir in sorted(pkgs_root.glob("manpages*")):
        package = pkg_dir.name
        man_root = pkg_dir / "usr" / "share" / "man"
        if package.endswith("-dev") or not man_root.is_dir():
            continue
        if package == "manpages":
            dirs = [("en", man_root)]
        else:
            dirs = [
                (LOCALE_TO_LANG[d.name], d) for d in sorted(man_root.iterdir()) if d.name in LOCALE_TO_LANG
            ]
        info = SourceInfo(
            package,
            "manpages",
            package,
            package_version(pkg_dir),
            package_licence(pkg_dir, package),
            "Debian bookworm main",
        )
        for lang, root in dirs:
            for page in sorted(root.glob("man*/*")):
                if page.is_symlink() or not page.is_file():  # aliases point to pages listed anyway
                    continue
                yield (
                    info,
                    Candidate(
                        lang,
                        package,
                        f"{package}:{lang}:{page.relative_to(root)}",
                        partial(_load_manpage, page, lang, classify),
                    ),
                )


def _load_manpage(page: Path, lang: str, classify: LangClassifier | None) -> str | None:
    paras = _filter_paragraphs(groff_paragraphs(_read_text(page)), lang, classify)
    return "\n".join(paras) if paras else None


def catalogue_candidates(
    pkgs_root: Path, classify: LangClassifier | None
) -> Iterator[tuple[SourceInfo, Candidate]]:
    """One candidate per ``.mo`` catalogue and language in every extracted package that is not a man-page
    package (English: the msgids of the :data:`_EN_MSGID_LOCALE` catalogues)."""
    for pkg_dir in sorted(pkgs_root.iterdir()):
        package = pkg_dir.name
        locale_root = pkg_dir / "usr" / "share" / "locale"
        if package.startswith("manpages") or not locale_root.is_dir():
            continue
        info = SourceInfo(
            f"catalogue:{package}",
            "catalogues",
            package,
            package_version(pkg_dir),
            package_licence(pkg_dir, package),
            "Debian bookworm main",
        )
        for loc_dir in sorted(locale_root.iterdir()):
            wanted: list[tuple[str, int]] = []
            if loc_dir.name in LOCALE_TO_LANG and loc_dir.name != "en":
                wanted.append((LOCALE_TO_LANG[loc_dir.name], 1))  # msgstr
            if loc_dir.name == _EN_MSGID_LOCALE:
                wanted.append(("en", 0))  # msgid: the English originals
            for mo in sorted((loc_dir / "LC_MESSAGES").glob("*.mo")):
                for lang, col in wanted:
                    yield (
                        info,
                        Candidate(
                            lang,
                            info.key,
                            f"{package}:{lang}:{loc_dir.name}:{mo.name}",
                            partial(_load_catalogue, mo, lang, col, classify),
                        ),
                    )


def _load_catalogue(mo: Path, lang: str, col: int, classify: LangClassifier | None) -> str | None:
    try:
        pairs = read_mo(mo.read_bytes())
    except ValueError as exc:
        log.warning("skipping %s: %s", mo, exc)
        return None
    msgs = [clean_message(p[col]) for p in pairs if p[1]]
    msgs = [m for m in msgs if len(m) >= (4 if lang == "zh" else 12)]
    keep: list[str] = []
    for start in range(0, len(msgs), MESSAGES_PER_DOC):  # language-check groups of messages
        text = "\n".join(msgs[start : start + MESSAGES_PER_DOC])
        if classify is None or is_language(text, lang, classify):
            keep.append(text)
    return "\n".join(keep) if keep else None


def ddtp_candidates(
    ddtp_root: Path, classify: LangClassifier | None
) -> Iterator[tuple[SourceInfo, Candidate]]:
    """One candidate per package description in the decompressed DDTP ``Translation-<locale>`` files."""
    release = "unknown"
    rel = ddtp_root / "RELEASE"
    if rel.is_file():
        fields = dict(line.split(":", 1) for line in rel.read_text().splitlines() if ":" in line)
        release = (
            f"{fields.get('Codename', '').strip()} {fields.get('Version', '').strip()} "
            f"({fields.get('Date', '').strip()})"
        )
    info = SourceInfo(
        "ddtp",
        "ddtp",
        "DDTP Translation-<lang> (main)",
        release,
        "each description under its package's DFSG-free licence",
        "Debian Description Translation Project via apt (Acquire::Languages)",
    )
    for path in sorted(ddtp_root.glob("Translation-*")):
        locale = path.name.split("-", 1)[1]
        lang = LOCALE_TO_LANG.get(locale)
        if lang is None:
            continue
        for pkg, desc in ddtp_descriptions(path.read_text(errors="replace")):
            yield (
                info,
                Candidate(lang, "ddtp", f"ddtp:{locale}:{pkg}", partial(_load_ddtp, desc, lang, classify)),
            )


def _load_ddtp(desc: str, lang: str, classify: LangClassifier | None) -> str | None:
    paras = _filter_paragraphs([p.strip() for p in desc.split("\n") if p.strip()], lang, classify)
    return "\n".join(paras) if paras else None


def bundled_candidates(langs: tuple[str, ...] = LANGS) -> Iterator[tuple[SourceInfo, Candidate]]:
    """The train split of the bundled parallel corpus (lines 1-200), one candidate per 10 sentences."""
    from saesteer import __version__

    info = SourceInfo(
        "bundled",
        "bundled",
        "saesteer corpus (train split, lines 1-200)",
        __version__,
        "Apache-2.0 (part of saesteer)",
        "saesteer/corpus/data/<lang>.txt",
    )
    for lang in langs:
        path = package_data("corpus", "data", f"{lang}.txt")
        if not path.is_file():
            raise CorpusError(f"the bundled corpus file {path} is missing")
        lines = path.read_text(encoding="utf-8").splitlines()[:BUNDLED_TRAIN_LINES]
        for start in range(0, len(lines), 10):
            text = "\n".join(lines[start : start + 10])
            yield info, Candidate(lang, "bundled", f"bundled:{lang}:{start + 1}", partial(_const, text))


def _const(text: str) -> str:
    return text


def collect_candidates(
    text_root: Path | None, langs: tuple[str, ...] = LANGS, *, classify: LangClassifier | None = None
) -> tuple[list[Candidate], dict[str, SourceInfo]]:
    """Every candidate document under ``text_root`` (``pkgs/`` and ``ddtp/`` as written by
    ``scripts/fetch_training_text.sh``) plus the bundled corpus, restricted to ``langs``; and the sources
    they come from, by key. ``text_root=None`` uses the bundled corpus only."""
    gens = [bundled_candidates(langs)]
    if text_root is not None:
        pkgs_root, ddtp_root = text_root / "pkgs", text_root / "ddtp"
        if not pkgs_root.is_dir() and not ddtp_root.is_dir():
            raise CorpusError(
                f"no training text under {text_root}: expected pkgs/ and ddtp/ there; run "
                f"scripts/fetch_training_text.sh {text_root} first"
            )
        if pkgs_root.is_dir():
            gens += [manpage_candidates(pkgs_root, classify), catalogue_candidates(pkgs_root, classify)]
        if ddtp_root.is_dir():
            gens.append(ddtp_candidates(ddtp_root, classify))
    cands: list[Candidate] = []
    sources: dict[str, SourceInfo] = {}
    for gen in gens:
        for info, cand in gen:
            if cand.lang in langs:
                sources.setdefault(info.key, info)
                cands.append(cand)
    return cands, sources
