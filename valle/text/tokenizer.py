"""Text to phoneme ids, the text input of the model: normalise, phonemise, encode."""

from valle.errors import TextError
from valle.text.g2p import nothing_to_say, phonemize
from valle.text.normalize import normalize_text
from valle.text.vocab import PhonemeVocab

# Text longer than this is a book, not an utterance: phonemising it would hold the
# espeak-ng lock for long, and no model synthesises it in one piece anyway.
MAX_CHARS = 100_000


class PhonemeTokenizer:
    """`tokenizer(text, language)` -> phoneme ids in `tokenizer.vocab`, which is saved
    with each model so that its ids keep their meaning."""

    def __init__(self, vocab: PhonemeVocab | None = None):
        self.vocab = vocab if vocab is not None else PhonemeVocab()

    def normalize(self, text: str, language: str = "en-us") -> str:
        """`normalize_text`, refusing text over `MAX_CHARS`."""
        if len(text) > MAX_CHARS:
            raise TextError(f"text of {len(text):,} characters is longer than the {MAX_CHARS:,} allowed; "
                            "split it (valle.text.split_sentences) and synthesise the parts")
        return normalize_text(text, language=language)

    def phonemize(self, text: str, language: str = "en-us") -> list[str]:
        """Phoneme tokens of raw `text` (see `valle.text.g2p` for what a token is)."""
        normalized = self.normalize(text, language)
        if not normalized:
            raise nothing_to_say(text)
        return phonemize(normalized, language=language)

    def __call__(self, text: str, language: str = "en-us") -> list[int]:
        return self.vocab.encode(self.phonemize(text, language))
