"""Speakable sentences from public-domain text that Debian ships offline.

English: the `fortunes` collection (one quip per `%`-separated entry) and WordNet's
usage examples (quoted phrases in its data files). Other languages: Debian's
`fortunes-XX` collections (`FORTUNE_LANGUAGES`), and for languages without one, the
prose of their translated manual pages (`MANPAGE_LANGUAGES`: technical, but full
sentences by the hundred or thousand; the sentences a translation left in English, which
py3langid tells apart, are left out). A sentence is kept only if the synthesisers and a later
ASR check will read it the same way as its transcript: plain letters and light
punctuation, no digits, symbols, shouted acronyms or command-line options.
"""

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

from valle.errors import ConfigError, DependencyError
from valle.text.language import detect_language
from valle.text.normalize import is_english

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
# espeak-ng language -> (Debian package, its folder or file under FORTUNE_DIR)
FORTUNE_LANGUAGES = {"bg": ("fortunes-bg", "bg"), "cs": ("fortunes-cs", "cs"), "de": ("fortunes-de", "de"),
                     "es": ("fortunes-es", "es"), "it": ("fortunes-it", "it"), "pl": ("fortunes-pl", "pl"),
                     "pt-br": ("fortunes-br", "brasil"), "ru": ("fortunes-ru", "ru")}
_NOT_ENGLISH = {path for _, path in FORTUNE_LANGUAGES.values()}  # files among the English ones
MAN_DIR = Path("/usr/share/man")
# espeak-ng language -> (Debian package, its folder under MAN_DIR). Greek is not here: manpages-el holds 5 pages.
MANPAGE_LANGUAGES = {"da": ("manpages-da", "da"), "fr-fr": ("manpages-fr", "fr"), "hu": ("manpages-hu", "hu"),
                     "nl": ("manpages-nl", "nl"), "ro": ("manpages-ro", "ro"), "uk": ("manpages-uk", "uk")}

_SPEAKABLE = re.compile(r"[A-Za-z][A-Za-z ,.'?!;-]*[.?!]")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
_SHOUTED = re.compile(r"\b[A-Z]{2,}\b")
_WORDNET_EXAMPLE = re.compile(r'"([^"]+)"')
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Inc|Ltd|Co|No)\.", re.IGNORECASE)
# Any alphabet: a letter first, then letters, spaces and light punctuation, an end mark last.
_SPEAKABLE_ANY = re.compile(r"[^\W\d_][^\W\d_ ,.'?!;-]*(?:[ ,'?!;-]+[^\W\d_]+)*[.?!]")
_SENTENCE_END_ANY = re.compile(r"(?<=[.?!])\s+(?=[^\W\d_])")
_ABBREVIATED = re.compile(r"\b\w{1,3}\.\s")  # "Sr. ", "z. ", "др. ": abbreviations that engines read differently
# groff: font changes and zero-width marks, dropped; escapes that stand for characters, replaced. Any other escape
# (an accent written `\['e]`, a string) leaves its sentence out rather than a word without its letter.
_GROFF_DROP = re.compile(r"\\f(?:\[[^]]*\]|\(..|.)|\\[&,/]")
_GROFF_CHARACTERS = {"\\-": "-", "\\ ": " ", "\\(aq": "'", "\\(cq": "'", "\\(oq": "'", "’": "'"}


def is_speakable(sentence: str, min_words: int = 3, max_words: int = 30) -> bool:
    """True for a plain sentence that every engine reads exactly as written."""
    if not _SPEAKABLE.fullmatch(sentence) or _SHOUTED.search(sentence) or _ABBREVIATION.search(sentence):
        return False
    if "--" in sentence or "''" in sentence or " -" in sentence or "- " in sentence:
        return False
    return min_words <= len(sentence.split()) <= max_words


def is_speakable_in(sentence: str, language: str, min_words: int = 3, max_words: int = 30) -> bool:
    """`is_speakable` for a language of any alphabet: letters, spaces and light punctuation only."""
    if not _SPEAKABLE_ANY.fullmatch(sentence) or _ABBREVIATED.search(sentence + " "):
        return False
    return min_words <= len(sentence.split()) <= max_words


def _entries(path: Path, end: re.Pattern[str]) -> Iterator[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    for entry in text.split("\n%\n"):
        if "\t" in entry or "  --" in entry:  # attributions, verse and tables
            entry = entry.split("  --")[0].split("\t")[0]
        yield from end.split(" ".join(entry.split()))


def _fortune_sentences() -> Iterator[str]:
    for path in sorted(FORTUNE_DIR.iterdir()):
        # Not .dat indexes or .u8 links, nor another language's files: Portuguese, or Italian linked up from it/.
        if path.suffix or not path.is_file() or path.name in _NOT_ENGLISH or path.resolve().parent != FORTUNE_DIR.resolve():
            continue
        yield from _entries(path, _SENTENCE_END)


def _wordnet_sentences() -> Iterator[str]:
    for path in sorted(WORDNET_DIR.glob("data.*")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            for example in _WORDNET_EXAMPLE.findall(line):
                example = example.strip()
                if example and example[0].islower():
                    example = example[0].upper() + example[1:]
                yield example if example.endswith((".", "?", "!")) else example + "."


def _man_paragraphs(path: Path) -> Iterator[str]:
    """The running text of one gzipped manual page: text lines between requests, one paragraph per run."""
    lines: list[str] = []
    for line in gzip.open(path, "rt", encoding="utf-8", errors="replace").read().splitlines():
        if line.startswith((".", "'")):  # a request (`.B word` too, so that a sentence it interrupts is left out)
            yield " ".join(lines)
            lines = []
            continue
        for escape, character in _GROFF_CHARACTERS.items():
            line = line.replace(escape, character)
        lines.append(_GROFF_DROP.sub("", line))
    yield " ".join(lines)


def _is_prose(sentence: str) -> bool:
    """A manual page's sentence that reads as prose: capitalised, without options (`-f`, `--all`) or shouted names."""
    return (sentence[0].isupper() and "\\" not in sentence and "\ufffd" not in sentence and " -" not in sentence
            and "--" not in sentence and not _SHOUTED.search(sentence))


def load_sentences(language: str = "en-us") -> list[str]:
    """All distinct speakable sentences of `language`, in a fixed order (sorted), so that seeds reproduce."""
    if not is_english(language):
        return _other_language(language)
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


def _other_language(language: str) -> list[str]:
    if language in MANPAGE_LANGUAGES:
        return _manpage_sentences(language)
    if language not in FORTUNE_LANGUAGES:
        raise ConfigError(f"no offline sentences in {language!r}; the synthetic corpus speaks English and "
                          f"{', '.join([*FORTUNE_LANGUAGES, *MANPAGE_LANGUAGES])}")
    package, name = FORTUNE_LANGUAGES[language]
    source = FORTUNE_DIR / name
    if not source.exists():
        raise _missing(language, package)
    paths = sorted(p for p in source.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8")) if source.is_dir() else [source]
    return sorted({s for path in paths for s in _entries(path, _SENTENCE_END_ANY) if is_speakable_in(s, language)})


def _manpage_sentences(language: str) -> list[str]:
    package, name = MANPAGE_LANGUAGES[language]
    pages = sorted((MAN_DIR / name).rglob("*.gz"))
    if not pages:
        raise _missing(language, package)
    return sorted({s for page in pages for paragraph in _man_paragraphs(page)
                   for s in _SENTENCE_END_ANY.split(" ".join(paragraph.split()))
                   if is_speakable_in(s, language) and _is_prose(s) and detect_language(s, (language, "en-us")) == language})


def _missing(language: str, package: str) -> DependencyError:
    return DependencyError(f"the {language} sentences come from Debian's {package}: `apt-get install {package}`")
