"""The text front-end: normalisation, sentence splitting, G2P and the phoneme vocabulary."""

from valle.text.normalize import normalize_text
from valle.text.sentences import split_sentences

__all__ = ["normalize_text", "split_sentences"]
