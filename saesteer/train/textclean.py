"""Turn the raw Debian files into plain paragraphs: groff manual pages, gettext ``.mo`` catalogues,
DDTP package descriptions, and a language filter that drops paragraphs left untranslated.

Everything here is pure Python (no groff, no gettext tools), so that the training text is rebuilt the
same way on any machine.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator

# --- groff (man pages) ------------------------------------------------------------------------------------

# Requests whose arguments are running text (font macros): keep the words.
_TEXT_MACROS = {"B", "I", "SM", "SB"}
_ALT_MACROS = {"BR", "RB", "IR", "RI", "BI", "IB"}  # alternating fonts: arguments are glued together
# Requests that end a paragraph.
_BREAK_MACROS = {
    "SH",
    "SS",
    "PP",
    "P",
    "LP",
    "TP",
    "IP",
    "HP",
    "sp",
    "br",
    "RS",
    "RE",
    "nf",
    "fi",
    "TH",
    "EX",
    "EE",
    "in",
    "ti",
    "bp",
    "ne",
    "TQ",
    "PD",
    "UR",
    "UE",
    "MT",
    "ME",
    "SY",
    "YS",
    "OP",
    "nh",
    "ad",
    "ns",
    "rs",
}
_NAMED_CHARS = {
    "em": "—",
    "en": "–",
    "hy": "-",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "bu": "•",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "de": "°",
    "mu": "×",
    "di": "÷",
    "+-": "±",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "->": "→",
    "<-": "←",
    "ga": "`",
    "ti": "~",
    "ha": "^",
    "rs": "\\",
    "sl": "/",
    "Fo": "«",
    "Fc": "»",
    "fo": "‹",
    "fc": "›",
    "Eu": "€",
    "eu": "€",
    "ss": "ß",
    "ba": "|",
    "at": "@",
}
_ESCAPES = re.compile(
    r"""\\(?:
        f(?:\[[^\]]*\]|\(..|.)          # font changes \fB \f(CW \f[B]
      | \((..)                          # named character \(em            -> group 1
      | \[([^\]]*)\]                    # named character \[em]           -> group 2
      | \*(?:\[[^\]]*\]|\(..|.)         # string interpolation \*(Tm \*[x]
      | s[-+]?(?:\d|\(\d\d|\[\d+\])     # size change \s-1
      | [kmnMV](?:\[[^\]]*\]|\(..|.)    # marks, registers, colours
      | [XNhvwoDbxlLZSHzR]'[^']*'       # \X'...' \h'...' \w'...' and friends
      | [-e&:%c/,|^!)]                  # \- \e \& \: \% \c \/ \, \| \^
      | .                               # anything else: drop the backslash, keep the character
    )""",
    re.VERBOSE,
)


def _escape_sub(m: re.Match[str]) -> str:
    tok = m.group(0)
    if m.group(1) is not None or m.group(2) is not None:
        name = m.group(1) or m.group(2) or ""
        return _NAMED_CHARS.get(name, "")
    if tok == r"\-":
        return "-"
    if tok == r"\e":
        return "\\"
    if len(tok) == 2 and tok[1] in " ~0":
        return " "
    if len(tok) == 2 and tok[1] not in "&:%c/,|^!)":
        return tok[1]
    return ""


def unescape_groff(line: str) -> str:
    """Remove groff inline escapes (font changes, named characters, sizes) from one line of text."""
    return _ESCAPES.sub(_escape_sub, line)


def _macro_args(rest: str) -> list[str]:
    """Split macro arguments the way groff does (double quotes group words)."""
    return [a[1:-1] if len(a) >= 2 and a[0] == a[-1] == '"' else a for a in re.findall(r'"[^"]*"|\S+', rest)]


def groff_paragraphs(src: str) -> list[str]:
    """Plain-text paragraphs of a groff ``man`` page (headings, tables, comments and requests dropped)."""
    paras: list[str] = []
    cur: list[str] = []
    skip_until: str | None = None

    def flush() -> None:
        if cur:
            text = re.sub(r"\s+", " ", " ".join(cur)).strip()
            if text:
                paras.append(text)
            cur.clear()

    for raw in src.splitlines():
        line = raw.rstrip()
        if skip_until is not None:
            if line.startswith(skip_until):
                skip_until = None
            continue
        if line.startswith(('.\\"', "'\\\"", '.\\"', '\\"', ".\\#")) or line in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"^[.'][ \t]*([A-Za-z]{1,3}|\S+)\s*(.*)$", line)
            if not m:
                continue
            name, rest = m.group(1), m.group(2)
            if name in ("TS", "EQ", "PS"):
                flush()
                skip_until = {"TS": ".TE", "EQ": ".EN", "PS": ".PE"}[name]
            elif name in ("de", "ig", "am"):
                flush()
                skip_until = ".."
            elif name in ("SH", "SS"):
                flush()  # headings are dropped: they are capitalised labels, not sentences
            elif name in _TEXT_MACROS:
                cur.append(unescape_groff(" ".join(_macro_args(rest))))
            elif name in _ALT_MACROS:
                cur.append(unescape_groff("".join(_macro_args(rest))))
            elif name in _BREAK_MACROS:
                flush()
            # any other request (.so, .ds, .nr, .if, ...) carries no running text
            continue
        if not line.strip():
            flush()
            continue
        cur.append(unescape_groff(line))
    flush()
    return paras


# --- gettext catalogues -----------------------------------------------------------------------------------


def read_mo(data: bytes) -> list[tuple[str, str]]:
    """``(msgid, msgstr)`` pairs of a compiled gettext catalogue (plural forms: the first form of each).

    The header entry (empty msgid) is skipped. Raises ``ValueError`` on a file that is not a ``.mo``.
    """
    if len(data) < 28:
        raise ValueError("too short for a .mo file")
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x950412DE:
        endian = "<"
    elif magic == 0xDE120495:
        endian = ">"
    else:
        raise ValueError("bad .mo magic number")
    _rev, n, o_orig, o_trans = struct.unpack(endian + "4I", data[4:20])
    out: list[tuple[str, str]] = []
    for i in range(n):
        ln_o, off_o = struct.unpack(endian + "2I", data[o_orig + 8 * i : o_orig + 8 * i + 8])
        ln_t, off_t = struct.unpack(endian + "2I", data[o_trans + 8 * i : o_trans + 8 * i + 8])
        msgid = data[off_o : off_o + ln_o].split(b"\0")[0]
        msgstr = data[off_t : off_t + ln_t].split(b"\0")[0]
        if not msgid:
            continue
        if b"\x04" in msgid:  # msgctxt\x04msgid
            msgid = msgid.split(b"\x04", 1)[1]
        out.append((msgid.decode("utf-8", "replace"), msgstr.decode("utf-8", "replace")))
    return out


_FORMAT_SPEC = re.compile(
    r"%(?:\d+\$)?[-+ #0']*\d*(?:\.\d+)?(?:hh|h|ll|l|L|q|j|z|t)?[diouxXeEfgGcsSp%]|\{[^}]*\}"
)


def clean_message(msg: str) -> str:
    """A catalogue message as prose: format specifiers, accelerators and surplus whitespace removed."""
    msg = _FORMAT_SPEC.sub("", msg).replace("&", "").replace("_", " ")
    return re.sub(r"\s+", " ", msg).strip()


# --- DDTP package descriptions ----------------------------------------------------------------------------


def ddtp_descriptions(text: str) -> Iterator[tuple[str, str]]:
    """``(package, description)`` for each stanza of a DDTP ``Translation-<lang>`` file.

    The description is the short line followed by the long text (" ." lines are paragraph breaks).
    """
    for stanza in text.split("\n\n"):
        pkg = ""
        desc: list[str] = []
        in_desc = False
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                pkg = line.split(":", 1)[1].strip()
                in_desc = False
            elif line.startswith("Description-") and ":" in line:
                desc = [line.split(":", 1)[1].strip()]
                in_desc = True
            elif in_desc and line.startswith(" "):
                body = line[1:]
                desc.append("\n" if body.strip() == "." else body.strip())
            else:
                in_desc = False
        if pkg and desc:
            head, body = desc[0], " ".join(desc[1:])
            body = re.sub(r" ?\n ?", "\n", body)
            yield pkg, (head.rstrip(".") + ".\n" + body).strip()


# --- language filter --------------------------------------------------------------------------------------

# What py3langid may answer for text in each target language (Indonesian and Malay are hard to tell apart).
ACCEPTED_LANGID = {"id": {"id", "ms"}}
LangClassifier = Callable[[str], str]


def make_langid_classifier(langs: tuple[str, ...]) -> LangClassifier:
    """A py3langid classifier restricted to ``langs`` (plus Malay, which it confuses with Indonesian)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    allowed = set(langs) | {x for lang in langs for x in ACCEPTED_LANGID.get(lang, set())}
    ident.set_languages(sorted(allowed))

    def classify(text: str) -> str:
        return str(ident.classify(text)[0])

    return classify


def is_language(text: str, lang: str, classify: LangClassifier) -> bool:
    """True if ``classify`` puts ``text`` in ``lang`` (see :data:`ACCEPTED_LANGID`)."""
    return classify(text) in ACCEPTED_LANGID.get(lang, {lang})


def looks_like_prose(text: str, lang: str) -> bool:
    """Heuristic: long enough and mostly letters (drops option lists, code and tables)."""
    min_chars = 12 if lang == "zh" else 40
    if len(text) < min_chars:
        return False
    letters = sum(ch.isalpha() for ch in text)
    return letters >= 0.6 * len(text.replace(" ", ""))
