"""LJSpeech 1.1: 13,100 clips of one female speaker reading non-fiction, 22.05 kHz.

Layout, as unpacked from keithito.com:
    SRC/metadata.csv      lines `<id>|<raw text>|<normalized text>`, no header, no quoting
    SRC/wavs/<id>.wav
The normalized column is used: numbers, dates and abbreviations already spelled out.
"""

from pathlib import Path

from valle.data.corpora._common import Listing, clean_text, listed_audio, read_table
from valle.data.manifest import Utterance
from valle.errors import CorpusError

SPEAKER = "LJ"
_LINE = "`<id>|<raw text>|<normalized text>`"


def read_ljspeech(src: Path) -> Listing:
    """The single listing `ljspeech`, in metadata order."""
    metadata = src / "metadata.csv"
    if not metadata.is_file():
        raise CorpusError(
            f"no LJSpeech metadata under {src}: expected SRC/metadata.csv with lines {_LINE} "
            "and SRC/wavs/<id>.wav — is this the LJSpeech-1.1 folder?"
        )
    rows = []
    for n, (utt_id, _raw, normalized) in read_table(metadata, widths=(3,), expected=_LINE):
        text = clean_text(normalized)
        if not text:
            raise CorpusError(f"{metadata} line {n} has an empty normalized text: expected {_LINE}")
        audio = listed_audio(src / "wavs" / f"{utt_id}.wav", f"{metadata} line {n}")
        rows.append(Utterance(id=utt_id, audio=audio, text=text, speaker=SPEAKER))
    return {"ljspeech": rows}
