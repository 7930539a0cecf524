"""festvox-ru: the recordings behind Festival's Russian voice, one reader (the voice "nsh"), 16 kHz.

Layout, as Debian installs it (festvox-ru):
    ROOT/usr/share/festival/voices/russian/msu_ru_nsh_clunits/etc/txt.done.data
    ROOT/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav/<id>.wav
with transcript lines `( ru_0001 "text" )`. A `+` before a vowel marks the stress
(`вол+ос`); espeak-ng places stress itself, so the marks are removed.

Only this voice is read: Festival's other voices, like every other folder under
usr/share/festival, are kept for independent evaluation (see `_common.RESERVED`).
"""

import re
from pathlib import Path

from valle.data.corpora._common import clean_text, read_lines
from valle.data.corpora.debian._common import Skips, installed, package_missing
from valle.data.manifest import Utterance
from valle.errors import CorpusError

VOICE = Path("usr/share/festival/voices/russian/msu_ru_nsh_clunits")
PACKAGES = ("festvox-ru",)
SPEAKER = "festvox-ru-nsh"
_LINE = re.compile(r'^\(\s*(\S+)\s+"(.*)"\s*\)\s*$')


def read_festvox_ru(root: Path, skips: Skips) -> list[Utterance]:
    """The utterances of txt.done.data, in its order; those without a wav are skipped and counted."""
    voices = [voice for voice in installed(root, VOICE) if (voice / "etc/txt.done.data").is_file()]
    if not voices:
        raise package_missing("festvox-ru", PACKAGES, root, f"{VOICE}/etc/txt.done.data")
    transcript = voices[0] / "etc/txt.done.data"
    rows = []
    for n, line in read_lines(transcript):
        match = _LINE.match(line)
        if match is None:
            raise CorpusError(f'{transcript} line {n} is not `( <id> "text" )`; reinstall festvox-ru')
        utt_id, text = match.groups()
        audio = voices[0] / "wav" / f"{utt_id}.wav"
        if audio.is_file():
            rows.append(Utterance(id=utt_id, audio=audio, text=clean_text(text.replace("+", "")), speaker=SPEAKER, language="ru"))
        else:
            skips.add("without a wav", utt_id)
    return rows
