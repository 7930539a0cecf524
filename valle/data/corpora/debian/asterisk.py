"""Asterisk's voice prompts: studio recordings of telephone-system phrases by eight voices.

Layout, as Debian installs it:
    ROOT/usr/share/asterisk/sounds/<voice>/[<folder>/]<name>.g722      asterisk-core-sounds-XX-g722
    ROOT/usr/share/asterisk/sounds/<voice>/[<folder>/]<name>.wav       asterisk-core-sounds-XX-wav (8 kHz)
    ROOT/usr/share/doc/asterisk-core-sounds-XX/core-sounds-XX.txt.gz   lines `<folder>/<name>: text`
The core sets (Allison in English and Mexican Spanish, June in Canadian French, Carlo in
Italian, IvrvoiceRU in Russian) are read from the 16 kHz G.722 files where installed, else
from the 8 kHz WAV ones. Three older sets have no transcript, in their binary or their
source packages: Menardi's Italian (8 kHz WAV, asterisk-prompt-it-menardi-wav), July's
Colombian Spanish and Armelle's French (8 kHz GSM, asterisk-prompt-es-co and
asterisk-prompt-fr-armelle, which own sounds/es and sounds/fr). Their sentences are other
translations than the core sets' (Menardi's Italian is not Silvia Petrin's, which Carlo
reads), so only the clips whose words the file name fixes, numbers, letters and the
spelling alphabet (digits/, letters/, phonetic/), take the core set's text.

Transcripts mark what is not said: `[ascending tones]`, `(10 seconds of silence)`, `<beep>`,
`at [@]`. Those parts are removed, and a clip left with no words is skipped. English and
French prompts say the phone keys * and # as words, which the text spells out; a Russian
line still in English is skipped.
"""

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

from valle.data.corpora._common import clean_text
from valle.data.corpora.debian._common import Skips, installed, package_missing
from valle.data.manifest import Utterance
from valle.errors import CorpusError

SOUNDS = Path("usr/share/asterisk/sounds")
TRANSCRIPTS = "usr/share/doc/asterisk-core-sounds-{0}/core-sounds-{0}.txt"
FIXED_WORDS = ("digits", "letters", "phonetic")
"""Folders whose file names fix the words, whatever the translation."""


@dataclass(frozen=True)
class Voice:
    folder: str  # below SOUNDS
    transcripts: str  # the XX of asterisk-core-sounds-XX
    language: str  # espeak-ng
    speaker: str
    package: str  # what installs the audio
    fixed_words_only: bool = False  # no transcript of its own: see the module's docstring


VOICES = (
    Voice("en_US_f_Allison", "en", "en-us", "asterisk-Allison", "asterisk-core-sounds-en-g722"),
    Voice("es_MX_f_Allison", "es", "es-419", "asterisk-Allison", "asterisk-core-sounds-es-g722"),
    Voice("fr_CA_f_June", "fr", "fr-fr", "asterisk-June", "asterisk-core-sounds-fr-g722"),
    Voice("it_IT_m_Carlo", "it", "it", "asterisk-Carlo", "asterisk-core-sounds-it-g722"),
    Voice("ru_RU_f_IvrvoiceRU", "ru", "ru", "asterisk-IvrvoiceRU", "asterisk-core-sounds-ru-g722"),
    Voice("it_IT_f_Menardi", "it", "it", "asterisk-Menardi", "asterisk-prompt-it-menardi-wav", True),
    Voice("es", "es", "es-419", "asterisk-July", "asterisk-prompt-es-co", True),
    Voice("fr", "fr", "fr-fr", "asterisk-Armelle", "asterisk-prompt-fr-armelle", True),
)
PACKAGES = (*(v.package for v in VOICES), *(f"asterisk-core-sounds-{x}" for x in ("en", "it", "ru")), "ffmpeg")
"""What apt installs for the source: the audio, transcripts, and ffmpeg for G.722 and GSM."""
CONFLICTING = ("asterisk-core-sounds-es", "asterisk-core-sounds-fr")
"""The Spanish and French transcripts: Debian declares them in conflict with
asterisk-prompt-es-co and -fr-armelle (both would own sounds/es and sounds/fr), so they
are unpacked under ROOT/usr/local/share/valle/debian instead (see `_common.EXTRACTED`)."""

SUFFIXES = (".g722", ".wav", ".gsm")
"""Preferred first: 16 kHz G.722, then the 8 kHz formats."""

KEY_WORDS = {"en": {"*": " star ", "#": " pound "}, "fr": {"*": " étoile ", "#": " dièse "}}
_NOT_SAID = re.compile(r"\[[^]]*]|\([^)]*\)|<[^>]*>")
_LINE = re.compile(r"^\s*([\w./-]+)\s*:(.*)$")


def read_asterisk(root: Path, skips: Skips) -> list[Utterance]:
    """Every installed voice's clips with their transcripts, voice by voice."""
    voices = [v for v in VOICES if installed(root, SOUNDS / v.folder) and not (root / SOUNDS / v.folder).is_symlink()]
    if not voices:
        raise package_missing("asterisk", PACKAGES, root, f"{SOUNDS}/<voice>/<name>.g722")
    rows = []
    for voice in voices:
        texts = _transcripts(root, voice.transcripts)
        for folder in installed(root, SOUNDS / voice.folder):
            rows.extend(_voice_clips(folder, voice, texts, skips))
    return rows


def _voice_clips(folder: Path, voice: Voice, texts: dict[str, str] | None, skips: Skips) -> list[Utterance]:
    """One clip per prompt name, in the best format installed."""
    best: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).with_suffix("").as_posix()
        if path.suffix in SUFFIXES and path.is_file() and (name not in best or _rank(path) < _rank(best[name])):
            best[name] = path
    rows = []
    for name, path in best.items():
        clip_id = f"{voice.folder}_{name.replace('/', '_')}"
        if texts is None:
            skips.add(f"without their transcripts, asterisk-core-sounds-{voice.transcripts} "
                      "(`valle data install-sources asterisk` adds them)", clip_id)
            continue
        if voice.fixed_words_only and name.split("/")[0] not in FIXED_WORDS:
            skips.add("without a transcript of their own (older prompt sets)", clip_id)
            continue
        if name not in texts:
            skips.add(f"missing from core-sounds-{voice.transcripts}.txt", clip_id)
            continue
        text = _spoken(texts[name], voice.transcripts)
        if not text:
            skips.add("whose transcript says no words (tones, silence) or a phone key it cannot spell", clip_id)
        else:
            rows.append(Utterance(id=clip_id, audio=path, text=text, speaker=voice.speaker, language=voice.language))
    return rows


def _rank(path: Path) -> int:
    return SUFFIXES.index(path.suffix)


def _transcripts(root: Path, language: str) -> dict[str, str] | None:
    """Prompt name -> text from core-sounds-XX.txt(.gz), or None when the package is not installed."""
    for base in (TRANSCRIPTS.format(language) + ".gz", TRANSCRIPTS.format(language)):
        for path in installed(root, base):
            return _parse(path)
    return None


def _parse(path: Path) -> dict[str, str]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read the Asterisk transcripts {path}: {e}; reinstall its package") from None
    texts = {}
    for line in lines:
        match = _LINE.match(line)
        if match and not line.lstrip().startswith(";"):
            texts[match.group(1)] = match.group(2)
    if not texts:
        raise CorpusError(f"{path} has no `<name>: text` lines; reinstall its package")
    return texts


def _spoken(text: str, language: str) -> str:
    """What the prompt says: annotations removed, phone keys in words; "" when nothing is said."""
    text = _NOT_SAID.sub(" ", text)
    for key, word in KEY_WORDS.get(language, {}).items():
        text = text.replace(key, word)
    text = clean_text(text)
    if language == "ru" and not re.search("[а-яё]", text, re.IGNORECASE):
        return ""  # left in English by the translators
    if any(key in text for key in "*#") or not any(c.isalpha() for c in text):
        return ""
    return text
