"""Discovery of the training text in an extracted Debian tree (man pages, catalogues, DDTP, bundled)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from saesteer.errors import CorpusError
from saesteer.train.sources import collect_candidates, package_licence, package_version

FR_PAGE = """.TH LS 1 "2021" "GNU" "Commandes"
.SH NOM
ls \\- afficher le contenu des répertoires
.SH DESCRIPTION
Afficher les informations des fichiers du répertoire courant par défaut, triées par ordre alphabétique.
.PP
This paragraph was left untranslated by the translators of the page.
"""


def _mo(pairs: list[tuple[str, str]]) -> bytes:
    entries = [("", "Content-Type: text/plain; charset=UTF-8\n"), *pairs]
    ids, strs = [e[0].encode() for e in entries], [e[1].encode() for e in entries]
    n = len(entries)
    start, blob, tabs = 28 + 16 * n, b"", []
    for s in ids + strs:
        tabs.append(struct.pack("<2I", len(s), start + len(blob)))
        blob += s + b"\0"
    return struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0) + b"".join(tabs) + blob


def make_text_tree(root: Path) -> Path:
    """A miniature of what scripts/fetch_training_text.sh writes."""
    pkg = root / "pkgs" / "manpages-fr"
    (pkg / "usr/share/man/fr/man1").mkdir(parents=True)
    (pkg / "usr/share/man/fr/man1/ls.1.gz").write_bytes(gzip.compress(FR_PAGE.encode()))
    (pkg / "usr/share/man/fr/man1/dir.1.gz").symlink_to("ls.1.gz")
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text("Package: manpages-fr\nVersion: 4.18.1-1\n")
    (pkg / "usr/share/doc/manpages-fr").mkdir(parents=True)
    (pkg / "usr/share/doc/manpages-fr/copyright").write_text("Files: *\nCopyright: x\nLicense: GPL-3+\n")
    en = root / "pkgs" / "manpages"
    (en / "usr/share/man/man1").mkdir(parents=True)
    (en / "usr/share/man/man1/ls.1").write_text(
        ".SH DESCRIPTION\nList information about the files in the current directory, sorted alphabetically.\n"
    )
    cu = root / "pkgs" / "coreutils"
    (cu / "usr/share/locale/fr/LC_MESSAGES").mkdir(parents=True)
    (cu / "usr/share/locale/de/LC_MESSAGES").mkdir(parents=True)
    fr_pairs = [
        ("cannot open the file %s for reading", "impossible d'ouvrir le fichier %s en lecture"),
        ("the directory is not empty", "le répertoire n'est pas vide et ne peut pas être supprimé"),
    ]
    de_pairs = [
        ("cannot open the file %s for reading", "kann die Datei %s nicht zum Lesen öffnen"),
        ("the directory is not empty", "das Verzeichnis ist nicht leer"),
    ]
    (cu / "usr/share/locale/fr/LC_MESSAGES/coreutils.mo").write_bytes(_mo(fr_pairs))
    (cu / "usr/share/locale/de/LC_MESSAGES/coreutils.mo").write_bytes(_mo(de_pairs))
    (cu / "usr/share/doc/coreutils").mkdir(parents=True)
    (cu / "usr/share/doc/coreutils/copyright").write_text("see /usr/share/common-licenses/GPL-3.\n")
    (root / "ddtp").mkdir()
    (root / "ddtp/Translation-fr").write_text(
        "Package: foo\nDescription-md5: 1\nDescription-fr: outil pour afficher des fichiers\n"
        " Ce paquet fournit un outil simple qui affiche le contenu des fichiers texte.\n"
    )
    (root / "ddtp/RELEASE").write_text("Codename: bookworm\nVersion: 12.15\nDate: today\n")
    return root


def test_collect_candidates_finds_every_kind_with_provenance(tmp_path):
    from saesteer.train.textclean import make_langid_classifier

    root = make_text_tree(tmp_path)
    cands, sources = collect_candidates(root, ("en", "fr"), classify=make_langid_classifier(("en", "fr")))
    ids = {c.doc_id for c in cands}
    assert (
        "manpages-fr:fr:man1/ls.1.gz" in ids and "manpages-fr:fr:man1/dir.1.gz" not in ids
    )  # symlink skipped
    assert "manpages:en:man1/ls.1" in ids
    assert "coreutils:fr:fr:coreutils.mo" in ids and "coreutils:en:de:coreutils.mo" in ids  # en = msgids
    assert "ddtp:fr:foo" in ids and sum(c.doc_id.startswith("bundled:fr") for c in cands) == 20
    page = next(c for c in cands if c.doc_id == "manpages-fr:fr:man1/ls.1.gz").load()
    assert page == (
        "ls - afficher le contenu des répertoires\nAfficher les informations des fichiers du "
        "répertoire courant par défaut, triées par ordre alphabétique."
    )  # English paragraph dropped
    en_cat = next(c for c in cands if c.doc_id == "coreutils:en:de:coreutils.mo").load()
    assert en_cat is not None and "cannot open the file for reading" in en_cat
    assert sources["manpages-fr"].version == "4.18.1-1" and sources["manpages-fr"].licence == "GPL-3+"
    assert sources["catalogue:coreutils"].licence == "GPL-3"
    assert "bookworm 12.15" in sources["ddtp"].version


def test_licence_and_version_fallbacks(tmp_path):
    assert package_version(tmp_path) == "unknown"
    assert package_licence(tmp_path, "x").startswith("unknown")


def test_missing_text_dir_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match=r"fetch_training_text\.sh"):
        collect_candidates(tmp_path / "nothing", ("en",))
