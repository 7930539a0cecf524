"""Which of a model's languages a text is in: the prompt's transcript, when nobody said.

A multilingual model reads the prompt's phonemes in the prompt's language (VALL-E X), and a
user cloning a French recording to speak English should not have to say that the recording
is French. py3langid (langid.py's naive Bayes model over byte n-grams, 97 languages, inside
the wheel) scores the transcript with only the model's languages competing; a guess below
`MIN_CONFIDENCE` is no guess: a word or two seldom tells.
"""

from collections.abc import Sequence
from functools import cache

MIN_CONFIDENCE = 0.8


@cache
def _identifier(codes: tuple[str, ...]):  # noqa: ANN202 (py3langid has no type hints)
    """py3langid's identifier with only those of `codes` it knows competing, loaded once per set (0.6 s); None
    when it knows fewer than two."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = [code for code in codes if code in identifier.nb_classes]
    if len(known) < 2:
        return None
    identifier.set_languages(known)
    return identifier


def detect_language(text: str, candidates: Sequence[str], prefer: str | None = None) -> str | None:
    """The candidate (espeak-ng codes: "en-us", "fr-fr", ...) that `text` is most likely in; None when unsure or
    when fewer than two candidates are told apart by their ISO 639-1 code (the part before "-").

    Words do not tell "en-us" from "en-gb": of the variants of the language found, `prefer` where it
    is one of them (the text's own language, for a prompt), else the first listed.
    """
    by_code: dict[str, str] = {}
    for language in candidates:
        by_code.setdefault(language.split("-")[0], language)
    if prefer in candidates:
        by_code[prefer.split("-")[0]] = prefer
    if len(by_code) < 2 or not text.strip():
        return None
    identifier = _identifier(tuple(sorted(by_code)))
    if identifier is None:
        return None
    code, confidence = identifier.classify(text)
    return by_code[code] if confidence >= MIN_CONFIDENCE else None
