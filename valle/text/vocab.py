"""The phoneme vocabulary: a fixed, versioned list of tokens whose position is the id.

Ids must mean the same on every machine and in every dataset, so the token list is
written out here rather than collected from data, and a model saves the vocabulary it
was trained with (`save`/`load`, JSON) and always decodes with that one.

Version 1 layout: the special tokens <pad>=0, <bos>=1, <eos>=2, <unk>=3, the word
separator "_", the punctuation . , ? ! ; : —, the stress marks ˈ ˌ, then `PHONES`.
`PHONES` is every phone espeak-ng 1.52 produced for its English voices (en-us, en-gb,
en-gb-x-rp, en-gb-scotland, en-gb-x-gbclan, en-gb-x-gbcwmd, en-029, en-us-nyc) over the
~120,000 words of WordNet's index and the ~50,000 lines of the fortunes collection
(normalised), sorted by code point; left out are the rare pairs espeak-ng glues without
a separator ("ææ", "nb"), which G2P splits into these phones.

Version 2 appends `PHONES_ADDED_IN_2`: the phones espeak-ng 1.52 produced, beyond version
1's, for the transcripts of the human speech in Debian's packages (25 languages: ar be bg
ca cs da de el en es fr he hu it lt ml nb nl pt ro ru tn uk, `valle data prepare debian`),
sorted by code point. Every version 1 id keeps its meaning, so that a model trained on
English grows into more languages by new rows of its text embedding alone
(`valle.train.trainer.warm_start`). A version's list never changes; a new list is a new
`VERSION`.
"""

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from valle.errors import ConfigError
from valle.files import atomic_write, read_json

VERSION = "2"
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
WORD_SEPARATOR = "_"
PUNCTUATION = (".", ",", "?", "!", ";", ":", "—")
STRESS_MARKS = ("ˈ", "ˌ")
PHONES = (
    "a", "aɪ", "aɪə", "aɪɚ", "aʊ", "aː", "b", "d", "dʒ", "e", "ei", "eə", "eɪ", "eʲ", "eː", "f",
    "h", "i", "iə", "iː", "j", "k", "l", "m", "n", "nʲ", "n̩", "o", "oə", "oɪ", "oʊ", "oː", "p",
    "r", "s", "t", "tʃ", "t̪", "u", "uː", "v", "w", "x", "z", "æ", "æʊ", "ç", "ð", "ŋ", "ɐ",
    "ɑə", "ɑː", "ɑːɹ", "ɑ̃", "ɒ", "ɔ", "ɔə", "ɔɪ", "ɔː", "ɔːɹ", "ɔ̃", "ə", "əl", "əu", "əɪ",
    "əɹ", "əʊ", "ɚ", "ɛ", "ɛə", "ɛɹ", "ɜ", "ɜː", "ɡ", "ɡʲ", "ɪ", "ɪɹ", "ɪʲ", "ɬ", "ɹ", "ɾ", "ʃ",
    "ʉ", "ʉɹ", "ʉː", "ʊ", "ʊə", "ʊɹ", "ʌ", "ʌɹ", "ʌʉ", "ʌʊ", "ʍ", "ʒ", "ʔ", "θ", "ᵻ",
)

PHONES_ADDED_IN_2 = (
    "c", "q", "y", "ø", "ħ", "œ", "ɑ", "ɕ", "ɖ", "ɟ", "ɣ", "ɨ", "ɫ", "ɭ", "ɱ", "ɲ", "ɳ", "ɵ", "ʁ", "ʂ", "ʈ", "ʋ",
    "ʎ", "ʏ", "ʐ", "ʑ", "ʕ", "ʝ", "β", "ε", "χ",
)
SILENT_TOKENS = SPECIAL_TOKENS + (WORD_SEPARATOR,) + PUNCTUATION + STRESS_MARKS  # may take no time in speech
_VERSION_1 = SILENT_TOKENS + PHONES
TOKENS = {"1": _VERSION_1, "2": _VERSION_1 + PHONES_ADDED_IN_2}

_log = logging.getLogger(__name__)


class PhonemeVocab:
    """Token <-> id mapping. `PhonemeVocab()` is the current version, `PhonemeVocab(version="1")` an earlier
    one; `load` or `from_dict` restore exactly the list a model was trained with, whatever its version."""

    def __init__(self, tokens: Sequence[str] | None = None, version: str = VERSION):
        if tokens is None and str(version) not in TOKENS:
            raise ConfigError(f"phoneme vocabulary version {version} is not one of {', '.join(TOKENS)}")
        tokens = tuple(TOKENS[str(version)] if tokens is None else tokens)
        if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ConfigError(f"a phoneme vocabulary must start with {', '.join(SPECIAL_TOKENS)}; got {', '.join(tokens[:4])}")
        if len(set(tokens)) != len(tokens):
            twice = sorted(t for t, n in Counter(tokens).items() if n > 1)
            raise ConfigError(f"phoneme vocabulary lists tokens twice: {' '.join(twice)}")
        self.version = str(version)
        self.tokens = tokens
        self._ids = {token: i for i, token in enumerate(tokens)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(len(SPECIAL_TOKENS))
        self.unknown: Counter[str] = Counter()  # tokens encoded as <unk>, with their counts

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhonemeVocab) and (self.version, self.tokens) == (other.version, other.tokens)

    def __repr__(self) -> str:
        return f"PhonemeVocab(version={self.version!r}, {len(self)} tokens)"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens`; a token outside the vocabulary becomes <unk>, is counted in
        `unknown` and logged once, so that a new phone shows up without stopping a run."""
        ids = []
        for token in tokens:
            i = self._ids.get(token)
            if i is None:
                if token not in self.unknown:
                    _log.warning("phoneme %r is not in vocabulary version %s; encoded as %s", token, self.version, UNK)
                self.unknown[token] += 1
                i = self.unk_id
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        tokens = []
        for i in ids:
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"id {i} is outside phoneme vocabulary version {self.version} (0..{len(self.tokens) - 1})")
            tokens.append(self.tokens[i])
        return tokens

    def read_by(self, other: "PhonemeVocab") -> bool:
        """Whether every id of this vocabulary names the same token in `other`, which may list more after them:
        what a model of `other` (an aligner of a later version) needs to read ids written with this one."""
        return other.tokens[:len(self.tokens)] == self.tokens

    def silent(self) -> list[bool]:
        """Per id: whether the token may take no time of its own in speech (word gaps, stress marks,
        punctuation that is not a pause), where every phone takes some."""
        return [token in SILENT_TOKENS for token in self.tokens]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PhonemeVocab":
        if not (isinstance(data, dict) and isinstance(data.get("tokens"), list) and "version" in data
                and all(isinstance(t, str) for t in data["tokens"])):
            raise ConfigError('a phoneme vocabulary is a JSON object {"version": ..., "tokens": [strings]}')
        return cls(data["tokens"], version=data["version"])

    def save(self, path: str | Path) -> None:
        with atomic_write(path) as f:
            json.dump(self.to_dict(), f, ensure_ascii=False, indent=1)
            f.write("\n")

    @classmethod
    def load(cls, path: str | Path) -> "PhonemeVocab":
        data = read_json(path, "phoneme vocabulary", "; it is saved beside the model it belongs to")
        return cls.from_dict(data)
