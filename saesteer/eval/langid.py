"""Offline language identification for evaluation (py3langid ships its model in the wheel).

The identifier can be restricted to the languages under study (the bundled 12 by default), which is
what an evaluation of "did steering switch the language" needs: a short continuation is classified
among the candidate languages only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from saesteer.errors import SaesteerError

BUNDLED_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh")


class LanguageIdentifier(Protocol):
    """Maps a text to ``(language code, confidence in [0, 1])``."""

    def __call__(self, text: str) -> tuple[str, float]: ...


@dataclass
class Py3LangId:
    """py3langid restricted to ``languages`` (ISO 639-1 codes); probabilities normalised."""

    languages: Sequence[str] = BUNDLED_LANGUAGES
    _ident: Any = field(default=None, init=False, repr=False)

    def _identifier(self) -> Any:
        if self._ident is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            unknown = sorted(set(self.languages) - set(ident.nb_classes))
            if unknown:
                raise SaesteerError(f"py3langid does not know the language(s) {', '.join(unknown)}")
            ident.set_languages(list(self.languages))
            self._ident = ident
        return self._ident

    def __call__(self, text: str) -> tuple[str, float]:
        if not text.strip():
            return "und", 0.0
        lang, prob = self._identifier().classify(text)
        return str(lang), float(prob)


def accuracy(texts: Sequence[str], target: str, identify: LanguageIdentifier) -> list[float]:
    """Per-text 0/1 correctness: ``identify(text)[0] == target`` (empty texts count as wrong)."""
    return [1.0 if identify(t)[0] == target else 0.0 for t in texts]
