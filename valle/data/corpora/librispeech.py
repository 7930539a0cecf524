"""LibriSpeech: 16 kHz read audiobooks, one transcript file per chapter.

Layout, as unpacked from openslr.org (SLR12):
    SRC/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    SRC/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
with transcript lines `<speaker>-<chapter>-<utt> TEXT IN CAPITALS`. SRC is the
`LibriSpeech` folder holding subsets, or one subset folder.

Texts are lower-cased: the corpus is all capitals, and a text normaliser may read an
upper-case word ("US", "IT") as an acronym and spell it letter by letter.
"""

from pathlib import Path

from valle.data.corpora._common import Listing, by_subset, clean_text, listed_audio, read_lines
from valle.data.manifest import Utterance
from valle.errors import CorpusError


def read_librispeech(src: Path) -> Listing:
    """One listing per subset, in transcript order."""
    subsets = by_subset(src, "*.trans.txt")
    if not subsets:
        raise CorpusError(
            f"no LibriSpeech transcripts (*.trans.txt) under {src}: expected "
            "SRC/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt "
            "— is this the LibriSpeech folder or one of its subsets?"
        )
    return {subset: [row for trans in transcripts for row in _read_transcript(trans)] for subset, transcripts in subsets.items()}


def _read_transcript(trans: Path) -> list[Utterance]:
    rows = []
    for n, line in read_lines(trans):
        utt_id, _, text = line.strip().partition(" ")
        if not text.strip():
            raise CorpusError(f"{trans} line {n} has no text: expected `<speaker>-<chapter>-<utt> TEXT`")
        audio = listed_audio(trans.parent / f"{utt_id}.flac", f"{trans} line {n}")
        rows.append(Utterance(id=utt_id, audio=audio, text=clean_text(text).lower(), speaker=trans.parent.parent.name))
    return rows
