"""Speakable sentences from public-domain text that Debian ships offline.

English: the `fortunes` collection (one quip per `%`-separated entry) and WordNet's
usage examples (quoted phrases in its data files). Other languages: Debian's
`fortunes-XX` collections (`FORTUNE_LANGUAGES`), and for languages without one, the
prose of their translated manual pages (`MANPAGE_LANGUAGES`: technical, but full
sentences by the hundred or thousand; the sentences a translation left in English, which
py3langid tells apart, are left out), or else LibreOffice's translated messages
(`CATALOG_LANGUAGES`: gettext catalogs, tooltips and error messages). Accents
(`ACCENTS`) read the sentences of their language in their own voice. A sentence is kept
only if the synthesisers and a later ASR check will read it the same way as its transcript:
plain letters and light punctuation, no digits, symbols, shouted acronyms or command-line
options.
"""

import gzip
import re
import struct
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from valle.errors import ConfigError, CorpusError, DependencyError
from valle.text.language import detect_language

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
# espeak-ng language -> (Debian package, its folder under CATALOG_DIR), for languages with neither of the above.
CATALOG_DIR = Path("/usr/lib/libreoffice/program/resource")
CATALOG_LANGUAGES = {language: (f"libreoffice-l10n-{language}", language)
                     for language in ("ar", "be", "ca", "el", "he", "lt", "ml", "nb", "tn")}
# The script of a catalog language, as Unicode names its letters, where it is not Latin: a message left in English
# is in the wrong one.
SCRIPTS = {"ar": "ARABIC", "be": "CYRILLIC", "el": "GREEK", "he": "HEBREW", "ml": "MALAYALAM"}
# espeak-ng accent -> the language whose sentences it reads: words do not tell the accent, the voice does.
ACCENTS = {"en-gb": "en-us", "es-419": "es"}
ENGLISH = "en-us"  # the language of the English sources above

_SPEAKABLE = re.compile(r"[A-Za-z][A-Za-z ,.'?!;-]*[.?!]")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
_SHOUTED = re.compile(r"\b[A-Z]{2,}\b")
_WORDNET_EXAMPLE = re.compile(r'"([^"]+)"')
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Inc|Ltd|Co|No)\.", re.IGNORECASE)
# Any alphabet: a letter first, then letters, spaces and light punctuation, an end mark last.
_SPEAKABLE_ANY = re.compile(r"[^\W\d_][^\W\d_ ,.'?!;-]*(?:[ ,'?!;-]+[^\W\d_]+)*[.?!]")
_SENTENCE_END_ANY = re.compile(r"(?<=[.?!])\s+(?=[^\W\d_])")
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters: "PDF" in "PDF-filen", "URL" in "l'URL"
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
    """`is_speakable` for a language of any alphabet: letters (with their combining marks and joiners: Malayalam's
    vowel signs and chillus), spaces and light punctuation only."""
    letters = _without_marks(sentence)
    if not _SPEAKABLE_ANY.fullmatch(letters) or _ABBREVIATED.search(letters + " "):
        return False
    return min_words <= len(sentence.split()) <= max_words


def _without_marks(text: str) -> str:
    """`text` without what belongs to the letter before: combining marks, and the zero-width (non-)joiner."""
    return "".join(c for c in text if not unicodedata.category(c).startswith("M") and c not in "\u200c\u200d")


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


def load_sentences(language: str = ENGLISH) -> list[str]:
    """All distinct speakable sentences of `language` (of an accent's language), in a fixed order (sorted), so that
    seeds reproduce."""
    language = ACCENTS.get(language, language)
    if language != ENGLISH:
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
    if language in CATALOG_LANGUAGES:
        return _catalog_sentences(language)
    if language not in FORTUNE_LANGUAGES:
        raise ConfigError(f"no offline sentences in {language!r}; the synthetic corpus speaks English and "
                          f"{', '.join([*FORTUNE_LANGUAGES, *MANPAGE_LANGUAGES, *CATALOG_LANGUAGES, *ACCENTS])}")
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


def read_catalog(path: Path) -> Iterator[str]:
    """The translations in a gettext catalog (.mo), each plural form apart, its header left out.

    Read here rather than by `gettext`, which fails on a header that is not UTF-8 and keys plural forms by number.
    """
    data = path.read_bytes()
    order = {b"\xde\x12\x04\x95": "<", b"\x95\x04\x12\xde": ">"}.get(data[:4])
    if order is None:
        raise CorpusError(f"{path} is not a gettext catalog (.mo)")
    count, originals, translations = struct.unpack(order + "3I", data[8:20])
    for i in range(count):
        original_length, _ = struct.unpack_from(order + "2I", data, originals + 8 * i)
        length, offset = struct.unpack_from(order + "2I", data, translations + 8 * i)
        if original_length:
            yield from data[offset:offset + length].decode("utf-8", errors="replace").split("\0")


def is_message_sentence(sentence: str, language: str) -> bool:
    """A sentence of a translated message that reads as the language: speakable (no format specifiers, markup or
    shortcut marks, which are symbols), every letter in its script, no shouted names (a spreadsheet function's, an
    acronym: "PDF-filen"), and not taken for English by py3langid (a message left untranslated; it knows no
    Tswana, kept by script alone)."""
    script = SCRIPTS.get(language, "LATIN")
    return (is_speakable_in(sentence, language)
            and all(unicodedata.name(c).startswith(script) for c in sentence if c.isalpha())
            and not any(len(word) > 1 and word.isupper() for word in _WORD.findall(sentence))
            and detect_language(sentence, (language, ENGLISH)) != ENGLISH)


def _catalog_sentences(language: str) -> list[str]:
    package, name = CATALOG_LANGUAGES[language]
    catalogs = sorted((CATALOG_DIR / name / "LC_MESSAGES").glob("*.mo"))
    if not catalogs:
        raise _missing(language, package)
    return sorted({s for catalog in catalogs for message in read_catalog(catalog)
                   for s in _SENTENCE_END_ANY.split(" ".join(message.split())) if is_message_sentence(s, language)})


def _missing(language: str, package: str) -> DependencyError:
    return DependencyError(f"the {language} sentences come from Debian's {package}: `apt-get install {package}`")
