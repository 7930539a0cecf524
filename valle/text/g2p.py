"""Grapheme to phoneme conversion with espeak-ng, through phonemizer.

espeak-ng's library and voice data come from the `espeakng-loader` wheel, so G2P works
offline with no system package. Creating a backend copies and loads the library, so
there is one per language, shared by all callers; calls are serialised because an
espeak-ng instance keeps global state. Where espeak-ng reads a word in another language
("le weekend" in French), the word keeps those phones and loses espeak-ng's "(en)"/"(fr)"
switch markers (phonemizer's "remove-flags").

Tokens: the phones espeak-ng segments (a length mark stays on its vowel: "iː";
diphthongs and r-coloured vowels are one phone: "aɪ", "ɑːɹ"), stress marks "ˈ" "ˌ"
as tokens of their own before the stressed vowel, `WORD_SEPARATOR` between words and
the prosodic punctuation . , ? ! ; : — as tokens after the word they follow:
"Hello, world!" -> h ə l ˈ oʊ , _ w ˈ ɜː l d !
"""

import difflib
import functools
import logging
import os
import re
import threading
import unicodedata

from valle.errors import TextError
from valle.text.sentences import split_sentences
from valle.text.vocab import PHONES, PUNCTUATION, STRESS_MARKS, WORD_SEPARATOR

_LOCK = threading.Lock()
# phonemizer warns about every utterance with a language switch or a word count
# mismatch; neither is actionable here, so its messages go to a logger that keeps errors only.
_PHONEMIZER_LOG = logging.getLogger("valle.text.phonemizer")
_PHONEMIZER_LOG.setLevel(logging.ERROR)
_PAUSE_DASH = re.compile(r"(?<!\S)-(?!\S)")  # the normaliser's " - " pause, espeak's "—"
_MARKS = re.escape("".join(STRESS_MARKS + PUNCTUATION))
# A stress mark or punctuation, or a phone: what lies between them and the "|" separators.
_PARTS = re.compile(rf"[{_MARKS}]|[^{_MARKS}|\-]+")
_KNOWN = frozenset(PHONES + STRESS_MARKS + PUNCTUATION)
_LONGEST_PHONE = max(map(len, PHONES))


def phonemize(text: str, language: str = "en-us") -> list[str]:
    """Phoneme tokens of already normalised `text` (see `PhonemeTokenizer` for raw text),
    phonemised sentence by sentence so that long text stays fast."""
    backend = _backend(language)
    sentences = [_PAUSE_DASH.sub("—", s) for s in split_sentences(text)]
    with _LOCK:
        lines = backend.phonemize(sentences, separator=_separator(), strip=True, njobs=1) if sentences else []
    tokens = _tokens(" ".join(lines))
    if not any(t not in PUNCTUATION and t != WORD_SEPARATOR for t in tokens):
        raise nothing_to_say(text)
    return tokens


def supported_languages() -> list[str]:
    """The espeak-ng language codes `phonemize` accepts ("en-us", "en-gb", "fr-fr", ...)."""
    return sorted(_codes().values())


def _tokens(phonemized: str) -> list[str]:
    """Tokens of phonemised text such as "h|ə|l|ˈoʊ, w|ˈɜː|l|d!". A hyphen, which
    espeak-ng writes inside words of some languages ("l|ə-"), is no sound and goes."""
    tokens: list[str] = []
    for word in phonemized.split():
        pieces = [piece for part in _PARTS.findall(word) for piece in _known_phones(part)]
        if tokens and pieces and pieces[0] not in PUNCTUATION:
            tokens.append(WORD_SEPARATOR)
        tokens.extend(pieces)
    return tokens


def _known_phones(phone: str) -> list[str]:
    """`phone` itself if the vocabulary has it, else the longest known phones it is made of:
    espeak-ng glues repeated letters ("AAARGH" -> "ææ") and has phones outside English
    ("ɛː" from a Cyrillic letter's name). A modifier left over (ː ʲ ̃ ...) is dropped so
    the nearest known phone stands in ("ɛ"); any other unknown character stays (<unk>)."""
    if phone in _KNOWN:
        return [phone]
    pieces = []
    while phone:
        size = next((n for n in range(min(len(phone), _LONGEST_PHONE), 0, -1) if phone[:n] in _KNOWN), 1)
        if size > 1 or phone[0] in _KNOWN or unicodedata.category(phone[0]) not in ("Lm", "Mn"):
            pieces.append(phone[:size])
        phone = phone[size:]
    return pieces


@functools.cache
def _espeak() -> type:
    """phonemizer's EspeakBackend class, pointed at the espeak-ng shipped by espeakng-loader."""
    import espeakng_loader
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    return EspeakBackend


@functools.cache
def _codes() -> dict[str, str]:
    """Lower-cased language code -> the code as espeak-ng spells it ("chr-US-Qaaa-x-west")."""
    return {code.lower(): code for code in _espeak().supported_languages()}


@functools.cache
def _separator():
    from phonemizer.separator import Separator

    return Separator(phone="|", word=" ", syllable="")


def _backend(language: str):
    with _LOCK:
        return _cached_backend(language.lower())


@functools.cache
def _cached_backend(language: str):
    if language not in _codes():
        raise TextError(f"unknown language {language!r} for espeak-ng{_suggestion(language)}; list the valid codes "
                        "with python -c \"from valle.text import supported_languages; print(*supported_languages())\"")
    return _espeak()(
        _codes()[language], punctuation_marks="".join(PUNCTUATION), preserve_punctuation=True, with_stress=True,
        language_switch="remove-flags", logger=_PHONEMIZER_LOG,
    )


def _suggestion(language: str) -> str:
    codes = supported_languages()
    close = [c for c in codes if c.startswith(language + "-")] or difflib.get_close_matches(language, codes)
    return f" (did you mean {', '.join(sorted(close, key=len)[:4])}?)" if close else ""


def nothing_to_say(text: str) -> TextError:
    """The error for text without a pronounceable word, quoting the text given."""
    if not text.strip():
        return TextError("the text is empty: give the words to speak")
    excerpt = repr(text if len(text) <= 40 else text[:40] + "...")
    return TextError(f"nothing to speak in {excerpt}: no word espeak-ng can pronounce; give text with letters or numbers")
