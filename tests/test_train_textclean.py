"""Text cleaning for the default SAE's training text: groff, gettext catalogues, DDTP, language filter."""

from __future__ import annotations

import struct

import pytest

from saesteer.train.textclean import (
    clean_message,
    ddtp_descriptions,
    groff_paragraphs,
    is_language,
    looks_like_prose,
    make_langid_classifier,
    read_mo,
    unescape_groff,
)


def make_mo(pairs: list[tuple[str, str]]) -> bytes:
    """A little-endian gettext .mo file holding ``pairs`` (msgid, msgstr), header entry first."""
    entries = [("", "Content-Type: text/plain; charset=UTF-8\n"), *pairs]
    ids = [e[0].encode() for e in entries]
    strs = [e[1].encode() for e in entries]
    n = len(entries)
    o_orig, o_trans = 28, 28 + 8 * n
    data_start = 28 + 16 * n
    blob = b""
    orig_tab, trans_tab = [], []
    for s in ids:
        orig_tab.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    for s in strs:
        trans_tab.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, o_orig, o_trans, 0, 0)
    tabs = b"".join(struct.pack("<2I", *t) for t in orig_tab) + b"".join(
        struct.pack("<2I", *t) for t in trans_tab
    )
    return head + tabs + blob


def test_unescape_groff_fonts_and_named_chars():
    assert unescape_groff(r"\fBls\fR \-l \(em liste \(Fox\(Fc \e \&.") == "ls -l — liste «x» \\ ."
    assert unescape_groff(r"a\s-1b\s0c \*(Tmd \f(CWe\fP") == "abc d e"


def test_groff_paragraphs_drops_markup_headings_comments_and_tables():
    src = "\n".join(
        [
            '.\\" a comment',
            '.TH LS 1 "2021" "GNU" "Commandes"',
            ".SH NOM",
            "ls \\- afficher le contenu",
            ".SH DESCRIPTION",
            "Afficher les informations des",
            ".I FICHIERs",
            "du répertoire courant.",
            ".TP",
            '.BR \\-a , " \\-\\-all"',
            "inclure les entrées cachées",
            ".TS",
            "tab(:); l l.",
            "a:b",
            ".TE",
            ".de XX",
            "junk",
            "..",
            ".PP",
            "Dernier paragraphe.",
        ]
    )
    assert groff_paragraphs(src) == [
        "ls - afficher le contenu",
        "Afficher les informations des FICHIERs du répertoire courant.",
        "-a, --all inclure les entrées cachées",
        "Dernier paragraphe.",
    ]


def test_read_mo_returns_pairs_without_header_and_handles_context_and_plurals():
    data = make_mo(
        [("Hello", "Bonjour"), ("ctx\x04Open", "Ouvrir"), ("one file\0%d files", "un fichier\0%d fichiers")]
    )
    assert read_mo(data) == [("Hello", "Bonjour"), ("Open", "Ouvrir"), ("one file", "un fichier")]
    with pytest.raises(ValueError):
        read_mo(b"not a catalogue at all, really not")


def test_clean_message_removes_format_specifiers_and_accelerators():
    assert clean_message("cannot open %s: %d%% done _File {name}") == "cannot open : done File"


def test_ddtp_descriptions_joins_short_and_long_text():
    text = (
        "Package: foo\nDescription-md5: abc\nDescription-fr: outil de test\n Première ligne\n suite.\n .\n"
        " Second paragraphe.\n\nPackage: bar\nDescription-md5: d\nDescription-fr: autre.\n"
    )
    assert list(ddtp_descriptions(text)) == [
        ("foo", "outil de test.\nPremière ligne suite.\nSecond paragraphe."),
        ("bar", "autre."),
    ]


def test_language_filter_and_prose_heuristic():
    classify = make_langid_classifier(("en", "fr", "id", "zh"))
    assert is_language("Le chat dort sur le canapé pendant que nous mangeons.", "fr", classify)
    assert not is_language("The cat sleeps on the sofa while we are eating dinner.", "fr", classify)
    assert is_language("Kucing itu tidur di atas sofa ketika kami sedang makan malam.", "id", classify)
    assert looks_like_prose("这是一个用于测试的中文句子。", "zh")
    assert not looks_like_prose("-a -b -c --x=1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9", "en")
    assert not looks_like_prose("too short", "en")
