"""KDE's children's games: KLettres' letters and syllables, KTuberling's words, short Ogg clips.

Layouts, as Debian installs them:
    ROOT/usr/share/klettres/<locale>/sounds.xml            klettres-data
        <language code="de"><alphabet><sound name="Ä" file="de/alpha/ae.ogg"/>...</alphabet>
                            <syllables><sound name="BUS" file="de/syllab/bus.ogg"/>...</syllables></language>
    ROOT/usr/share/ktuberling/sounds/<locale>.soundtheme   ktuberling-data
        <language code="en"><sound name="egypt_camel" file="en/egypt_camel.ogg"/>...</language>
with `file` relative to the game's data folder (klettres/, ktuberling/sounds/).

KLettres' text is the sound's name: a letter, which espeak-ng reads by its name as the
recordings do, or a syllable, lower-cased so that it is read as a word ("CAR" would be
spelled out). Syllables without a vowel ("CH", "TH") are the sound of a consonant, which
no spelling gives to a G2P: skipped.

KTuberling names its sounds by English keys (`eye`, `egypt_camel`) in every language; what
the other languages' recordings say is written nowhere, and their file names are ASCII
foldings (Swedish `oga` for öga) that would teach wrong phonemes. Only English is read,
its text the key without the playground's prefix ("camel").

Each language of each game is one speaker (`klettres-<locale>`, `ktuberling-en`): the games
credit one recording contributor per language. Most clips are under `MIN_SECONDS` and skipped.
"""

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

from valle.data.corpora.debian._common import ESPEAK_LANGUAGES, Skips, installed, package_missing
from valle.data.manifest import Utterance
from valle.errors import CorpusError

KLETTRES = Path("usr/share/klettres")
KTUBERLING = Path("usr/share/ktuberling/sounds")
KLETTRES_PACKAGES = ("klettres-data",)
KTUBERLING_PACKAGES = ("ktuberling-data",)
KTUBERLING_LOCALES = ("en",)
"""Languages whose sound names are what the recordings say."""

_LATIN_VOWELS = re.compile(r"[aeiouy]", re.IGNORECASE)


def read_klettres(root: Path, skips: Skips) -> list[Utterance]:
    """Every language's letters, then its syllables."""
    rows = []
    for listing in _listings(root, KLETTRES, "*/sounds.xml", "klettres", KLETTRES_PACKAGES):
        for locale, section, name, audio in _sounds(listing, listing.parent.parent):
            text = name.lower() if section == "syllables" else name
            if section == "syllables" and text.isascii() and not _LATIN_VOWELS.search(text):
                skips.add("that are a consonant's sound, not a word (CH, TH)", _clip_id("klettres", locale, audio))
            else:
                rows.extend(_utterance("klettres", locale, text, audio, skips))
    return rows


def read_ktuberling(root: Path, skips: Skips) -> list[Utterance]:
    """The English words; other languages' clips are skipped and counted (see the module's docstring)."""
    rows = []
    for theme in _listings(root, KTUBERLING, "*.soundtheme", "ktuberling", KTUBERLING_PACKAGES):
        for locale, _, name, audio in _sounds(theme, theme.parent):
            if locale in KTUBERLING_LOCALES:
                rows.extend(_utterance("ktuberling", locale, name.rpartition("_")[2], audio, skips))
            else:
                skips.add("in a language whose words KTuberling does not write down", _clip_id("ktuberling", locale, audio))
    return rows


def _listings(root: Path, folder: Path, pattern: str, game: str, packages: tuple[str, ...]) -> list[Path]:
    """The game's sound listings under ROOT; none is an error that names the package."""
    listings = [path for base in installed(root, folder) for path in sorted(base.glob(pattern))]
    if not listings:
        raise package_missing(game, packages, root, f"{folder}/{pattern}")
    return listings


def _sounds(listing: Path, data: Path) -> Iterator[tuple[str, str, str, Path]]:
    """(locale, section, name, audio path) of each <sound> in a KDE sound listing."""
    try:
        tree = ElementTree.parse(listing)
    except (OSError, ElementTree.ParseError) as e:
        raise CorpusError(f"cannot read {listing}: {e}; reinstall its package") from None
    for language in tree.iter("language"):
        for section in [language, *language]:
            for sound in section.findall("sound"):
                yield language.get("code", ""), section.tag, sound.get("name", "").strip(), data / sound.get("file", "")


def _clip_id(game: str, locale: str, audio: Path) -> str:
    return f"{game}_{locale}_{audio.parent.name}_{audio.stem}"


def _utterance(game: str, locale: str, text: str, audio: Path, skips: Skips) -> list[Utterance]:
    """The clip's row, or none (counted) when its audio or its language is missing."""
    clip_id = _clip_id(game, locale, audio)
    language = ESPEAK_LANGUAGES.get(locale)
    if language is None:
        skips.add(f"in a language espeak-ng cannot phonemise ({locale})", clip_id)
    elif not text:
        skips.add("without a name", clip_id)
    elif not audio.is_file():
        skips.add("listed but not installed", clip_id)
    else:
        return [Utterance(id=clip_id, audio=audio, text=text, speaker=f"{game}-{locale}", language=language)]
    return []
