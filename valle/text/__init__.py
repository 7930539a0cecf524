"""The text front-end: normalisation, sentence splitting, G2P and the phoneme vocabulary."""

from valle.text.g2p import supported_languages
from valle.text.normalize import normalize_text
from valle.text.sentences import split_sentences
from valle.text.tokenizer import MAX_CHARS, PhonemeTokenizer
from valle.text.vocab import PhonemeVocab

__all__ = [
    "MAX_CHARS",
    "PhonemeTokenizer",
    "PhonemeVocab",
    "normalize_text",
    "split_sentences",
    "supported_languages",
]
