"""Text normalisation: turn written text into the words a reader would speak.

Every language gets the same clean-up: NFKC (full-width forms, ligatures, "…" become
their plain forms; accented letters stay composed), typographic quotes and dashes to
ASCII, control and invisible characters removed, whitespace collapsed.

English ("en", "en-us", "en-gb", ... any code starting with "en") is also expanded:
abbreviations, numbers, money, times, dates and symbols become words, and only the
punctuation that shapes prosody is kept: . , ? ! ; : and " - " as a pause. Other
languages are left to espeak-ng, which reads numbers in each language itself.
"""

import re
import unicodedata

from valle.text.abbreviations import expand_abbreviations, expand_initials
from valle.text.quantities import expand_quantities

_TYPOGRAPHY = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "‹": "'", "›": "'", "′": "'",
    "‐": "-", "‒": "-", "–": "-", "−": "-", "—": " - ", "―": " - ",
})
# "1½" would become "11⁄2" under NFKC: a space keeps the whole number apart.
_VULGAR_FRACTION = re.compile("[¼½¾⅐-⅞]")
_WHITESPACE = re.compile(r"\s+")

_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals ", "×": " times "}
_SYMBOL = re.compile("|".join(map(re.escape, _SYMBOLS)))
_DOT_IN_NAME = re.compile(r"(?<=[^\W\d_])\.(?=[^\W\d_])")  # "example.com" -> "example dot com"
_BRACKET = re.compile(r"[()\[\]{}]")
_PAUSE_DASH = re.compile(r"\s*--+\s*|(?<!\S)-+(?!\S)")
# Besides letters and combining marks, what English text keeps: apostrophes, word-joining
# hyphens and the punctuation that shapes prosody. Quotes, slashes, emoji ... become spaces.
_KEPT = frozenset(" '-.,?!;:")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[.,?!;:])")
_COMMA_BEFORE_PUNCTUATION = re.compile(r",+\s*(?=[.,?!;:])")
_NO_SPACE_AFTER_PUNCTUATION = re.compile(r"(?<=[.,;:!?])(?=[^\W\d_])")
_LEADING_PUNCTUATION = re.compile(r"^[\s,;:.\-]+")
_TRAILING_PAUSE = re.compile(r"[\s,;:\-]+$")


def normalize_text(text: str, language: str = "en-us") -> str:
    """The speakable form of `text`. English text without a single letter ("!!!", "—")
    normalises to the empty string: there is nothing to say."""
    text = clean_unicode(text)
    if is_english(language):
        text = _expand_english(text, language.lower())
    return text


def is_english(language: str) -> bool:
    """Whether `language` is an espeak-ng English code: "en", "en-us", "en-gb-x-rp", ..."""
    return language.lower() == "en" or language.lower().startswith("en-")


def clean_unicode(text: str) -> str:
    """The language-independent clean-up described in the module docstring."""
    text = unicodedata.normalize("NFKC", _VULGAR_FRACTION.sub(r" \g<0>", text)).translate(_TYPOGRAPHY)
    return _WHITESPACE.sub(" ", "".join(map(_visible, text))).strip()


def _visible(c: str) -> str:
    """Control, format and unassigned characters go; tabs and newlines become spaces."""
    if unicodedata.category(c)[0] != "C":
        return c
    return " " if c.isspace() else ""


def _expand_english(text: str, language: str) -> str:
    text = expand_abbreviations(text)
    text = expand_quantities(text, language)
    text = expand_initials(text)
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m.group()], text)
    text = _DOT_IN_NAME.sub(" dot ", text)
    text = _tidy_punctuation(text)
    return text if any(c.isalpha() for c in text) else ""


def _tidy_punctuation(text: str) -> str:
    """Brackets become pauses (commas), dashes standing alone one " - " pause, anything
    unspoken a space; then spacing around punctuation is made regular."""
    text = _BRACKET.sub(",", text)
    text = _PAUSE_DASH.sub(" - ", text)
    text = "".join(c if c.isalpha() or c in _KEPT or unicodedata.category(c)[0] == "M" else " " for c in text)
    text = _SPACE_BEFORE_PUNCTUATION.sub("", text)
    text = _COMMA_BEFORE_PUNCTUATION.sub("", text)
    text = _NO_SPACE_AFTER_PUNCTUATION.sub(" ", text)
    text = _TRAILING_PAUSE.sub("", _LEADING_PUNCTUATION.sub("", text))
    return _WHITESPACE.sub(" ", text).strip()
