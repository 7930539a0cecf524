"""How many of a language's sounds a prompt's transcript holds.

The model hears the voice only through what the prompt says: a prompt that repeats a
few words shows it a handful of phonemes, and every other sound in the output is a
guess at how this speaker would make it. Coverage is counted on the transcript's
phonemes (espeak-ng through `valle.text`), as distinct phonemes and as the broad classes
they fall in.
"""

import functools
from dataclasses import dataclass

from valle.text import PhonemeTokenizer
from valle.text.vocab import PUNCTUATION, STRESS_MARKS, WORD_SEPARATOR

CLASSES = {
    "plosive": {"p", "b", "t", "d", "k", "ɡ", "ɡʲ", "t̪", "ʔ", "ɾ"},
    "fricative": {"f", "v", "θ", "ð", "s", "z", "ʃ", "ʒ", "h", "x", "ç", "ɬ", "tʃ", "dʒ"},
    "nasal": {"m", "n", "ŋ", "nʲ", "n̩"},
    "approximant": {"l", "ɹ", "r", "w", "j", "ʍ"},
}
NOT_PHONES = frozenset((WORD_SEPARATOR, *PUNCTUATION, *STRESS_MARKS))


@dataclass(frozen=True)
class Coverage:
    distinct: int  # distinct phonemes
    classes: tuple[str, ...]  # the classes present: vowel and those of `CLASSES`
    phonemes: int  # phonemes in all


def phoneme_class(phone: str) -> str:
    return next((name for name, members in CLASSES.items() if phone in members), "vowel")


def phones_of(text: str, language: str = "en-us") -> list[str]:
    """The transcript's phonemes, without word marks, punctuation or stress."""
    return [p for p in _tokenizer().phonemize(text, language) if p not in NOT_PHONES]


def coverage_of(phones: list[str]) -> Coverage:
    classes = {phoneme_class(p) for p in phones}
    return Coverage(len(set(phones)), tuple(c for c in ("vowel", *CLASSES) if c in classes), len(phones))


def phoneme_coverage(text: str, language: str = "en-us") -> Coverage:
    return coverage_of(phones_of(text, language))


@functools.cache
def _tokenizer() -> PhonemeTokenizer:
    return PhonemeTokenizer()
