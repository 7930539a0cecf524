"""Speakable English sentences from public-domain text that Debian ships offline.

Sources: the `fortunes` collection (one quip per `%`-separated entry) and WordNet's
usage examples (quoted phrases in its data files). A sentence is kept only if both
synthesisers and a later ASR check will read it the same way as its transcript:
plain letters and light punctuation, no digits, symbols or shouted acronyms.
"""

import re
from collections.abc import Iterator
from pathlib import Path

from valle.errors import DependencyError

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")

_SPEAKABLE = re.compile(r"[A-Za-z][A-Za-z ,.'?!;-]*[.?!]")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
_SHOUTED = re.compile(r"\b[A-Z]{2,}\b")
_WORDNET_EXAMPLE = re.compile(r'"([^"]+)"')
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Inc|Ltd|Co|No)\.", re.IGNORECASE)


def is_speakable(sentence: str, min_words: int = 3, max_words: int = 30) -> bool:
    """True for a plain sentence that every engine reads exactly as written."""
    if not _SPEAKABLE.fullmatch(sentence) or _SHOUTED.search(sentence) or _ABBREVIATION.search(sentence):
        return False
    if "--" in sentence or "''" in sentence or " -" in sentence or "- " in sentence:
        return False
    return min_words <= len(sentence.split()) <= max_words


def _fortune_sentences() -> Iterator[str]:
    for path in sorted(FORTUNE_DIR.iterdir()):
        if path.suffix or not path.is_file():  # skip .dat indexes and .u8 links
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in text.split("\n%\n"):
            if "\t" in entry or "  --" in entry:  # attributions, verse and tables
                entry = entry.split("  --")[0].split("\t")[0]
            yield from _SENTENCE_END.split(" ".join(entry.split()))


def _wordnet_sentences() -> Iterator[str]:
    for path in sorted(WORDNET_DIR.glob("data.*")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            for example in _WORDNET_EXAMPLE.findall(line):
                example = example.strip()
                if example and example[0].islower():
                    example = example[0].upper() + example[1:]
                yield example if example.endswith((".", "?", "!")) else example + "."


def load_sentences() -> list[str]:
    """All distinct speakable sentences, in a fixed order (sorted), so that seeds reproduce."""
    if not FORTUNE_DIR.is_dir() and not WORDNET_DIR.is_dir():
        raise DependencyError(
            f"no sentence source found ({FORTUNE_DIR} or {WORDNET_DIR}); install them with `apt-get install fortunes wordnet-base`"
        )
    found = set()
    if FORTUNE_DIR.is_dir():
        found.update(s for s in _fortune_sentences() if is_speakable(s))
    if WORDNET_DIR.is_dir():
        found.update(s for s in _wordnet_sentences() if is_speakable(s))
    return sorted(found)
