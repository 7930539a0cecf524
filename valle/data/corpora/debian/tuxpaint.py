"""Tux Paint's stamps: each stamp's description, spoken by volunteers in a dozen languages, 44.1 kHz Ogg.

Layout, as Debian installs it (tuxpaint-stamps-default):
    ROOT/usr/share/tuxpaint/stamps/<category>/[<folders>/]<stamp>.txt
    ROOT/usr/share/tuxpaint/stamps/<category>/[<folders>/]<stamp>_desc[_<locale>].ogg
The .txt holds the English description on its first line(s), then one `<locale>.utf8=text`
line per translation; `_desc.ogg` speaks the English one, `_desc_<locale>.ogg` the
translation. `<stamp>.ogg` without `_desc` is a sound effect, not read.

Speakers: no file names one. Tux Paint's changelog credits each language's descriptions to
one volunteer (Belarusian Kseniya Buraya, Bulgarian Krasimir Petkov, Catalan Pere Pujal, ...),
with numbers and letters from other sets. Speaker embeddings (Resemblyzer) agree: within a
language, the centroid of each stamp set of 5 clips or more (animals, food, symbols/alphabets,
symbols/money, ...) lies at cosine 0.83-1.00 from the centroid of the language's other sets,
median 0.97, while the centroids of two languages' volunteers lie at 0.68 (median; 0.84 at most).
So each language is one speaker, `tuxpaint-<locale>`; a language recorded by several people
in a set of a few clips would be merged into one, which is the known error of this rule.
"""

import re
from pathlib import Path

from valle.data.corpora._common import clean_text
from valle.data.corpora.debian._common import ESPEAK_LANGUAGES, Skips, installed, package_missing
from valle.data.manifest import Utterance
from valle.errors import CorpusError

STAMPS = Path("usr/share/tuxpaint/stamps")
PACKAGES = ("tuxpaint-stamps-default",)
ENGLISH = "en"
"""The locale of `_desc.ogg` and of the .txt's unprefixed first line."""

_DESCRIPTION = re.compile(r"(?P<stamp>.+)_desc(?:_(?P<locale>[A-Za-z@_]+?))?(?:\.ogg)+")
_TRANSLATION = re.compile(r"^(?P<locale>[A-Za-z@_]+)\.utf8=(?P<text>.*)$")


def read_tuxpaint(root: Path, skips: Skips) -> list[Utterance]:
    """Every stamp's spoken descriptions, stamp by stamp."""
    folders = installed(root, STAMPS)
    clips = [path for folder in folders for path in sorted(folder.rglob("*_desc*.ogg")) if path.is_file()]
    if not clips:
        raise package_missing("tuxpaint", PACKAGES, root, f"{STAMPS}/<category>/<stamp>_desc_<locale>.ogg")
    texts: dict[Path, dict[str, str]] = {}
    rows = []
    for path in clips:
        match = _DESCRIPTION.fullmatch(path.name)
        relative = path.relative_to(next(folder for folder in folders if path.is_relative_to(folder)))
        clip_id = re.sub(r"(\.ogg)+$", "", relative.as_posix()).replace("/", "_")
        if match is None:
            skips.add("named unlike <stamp>_desc[_<locale>].ogg", clip_id)
            continue
        locale = match["locale"] or ENGLISH
        description = path.with_name(f"{match['stamp']}.txt")
        if description not in texts:
            texts[description] = _read_descriptions(description)
        text = texts[description].get(locale, "")
        language = ESPEAK_LANGUAGES.get(locale)
        if not text:
            skips.add(f"with no {locale} text in their stamp's .txt", clip_id)
        elif language is None:
            skips.add(f"in a language espeak-ng cannot phonemise ({locale})", clip_id)
        else:
            rows.append(Utterance(id=clip_id, audio=path, text=text, speaker=f"tuxpaint-{locale}", language=language))
    return rows


def _read_descriptions(path: Path) -> dict[str, str]:
    """Locale -> description in a stamp's .txt ({} when the stamp has none)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read {path}: {e}; is it UTF-8 text? reinstall tuxpaint-stamps-default") from None
    texts: dict[str, list[str]] = {}
    for line in lines:
        match = _TRANSLATION.match(line)
        if match:
            texts.setdefault(match["locale"], []).append(match["text"])
        elif not texts.keys() - {ENGLISH}:  # English comes first, before any translation
            texts.setdefault(ENGLISH, []).append(line)
    return {locale: clean_text(" ".join(parts)) for locale, parts in texts.items()}
