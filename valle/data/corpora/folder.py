"""Any folder of audio with transcripts: your own recordings, or the synthetic corpus.

Two layouts, for .wav, .flac, .ogg and .mp3 audio:
    SRC/[<folders>/]<utt>.wav with <utt>.txt beside it
    SRC/metadata.csv          lines `file|text|speaker`, file relative to SRC; an optional
                              header row `file|text|speaker`; the speaker column is optional
The speaker, unless metadata.csv names it, is the audio's parent folder, or SRC's own
name for files directly in SRC. When metadata.csv exists it alone decides what belongs
to the corpus. Each split of the synthetic corpus (`<split>/<speaker>/<id>.wav` with
`<split>/metadata.csv`) is such a folder.

The manifest is OUT/<name of SRC>.jsonl, so that synth/train and synth/valid become
train.jsonl and valid.jsonl, just as the subsets of LibriTTS do. Ids are the audio
file names without suffix when those are unique (`utt0001`), else the paths relative to
SRC with `_` for `/` (`spk0_utt0001`), so that an id is always usable as a file name.
"""

import os
from dataclasses import replace
from pathlib import Path

from valle.data.corpora._common import (
    AUDIO_SUFFIXES,
    Listing,
    clean_text,
    listed_audio,
    read_table,
    read_text_file,
    report_skipped,
)
from valle.data.manifest import Utterance
from valle.errors import CorpusError

HEADER = ("file", "text", "speaker")
_LINE = "`file|text|speaker` or `file|text`"


def read_folder(src: Path) -> Listing:
    """The single listing named after SRC, from metadata.csv if present, else from .txt files."""
    name = src.resolve().name
    metadata = src / "metadata.csv"
    utterances = _from_metadata(src, metadata, name) if metadata.is_file() else _from_text_files(src, name)
    return {name: _short_ids(utterances)}


def _short_ids(utterances: list[Utterance]) -> list[Utterance]:
    """File names as ids when they are unique, else relative paths flattened with `_`."""
    stems = [Path(u.id).name for u in utterances]
    if len(set(stems)) == len(stems):
        return [replace(u, id=stem) for u, stem in zip(utterances, stems)]
    return [replace(u, id=u.id.replace("/", "_")) for u in utterances]


def _utterance(src: Path, relative: Path, text: str, speaker: str, default_speaker: str) -> Utterance:
    """A row whose id is `relative` without suffix and whose speaker, if not given, is its folder's."""
    speaker = speaker or relative.parent.name or default_speaker
    return Utterance(id=relative.with_suffix("").as_posix(), audio=src / relative, text=text, speaker=speaker)


def _from_metadata(src: Path, metadata: Path, default_speaker: str) -> list[Utterance]:
    utterances = []
    for n, fields in read_table(metadata, widths=(2, 3), expected=_LINE, header=HEADER):
        where = f"{metadata} line {n}"
        relative = Path(os.path.normpath(fields[0].strip()))
        if relative.is_absolute() or relative.parts[:1] == ("..",):
            raise CorpusError(f"{where} names {fields[0]!r}, outside SRC: audio paths in metadata.csv are relative to {src}")
        text = clean_text(fields[1])
        if not text:
            raise CorpusError(f"{where} has an empty text: expected {_LINE}")
        listed_audio(src / relative, where)
        speaker = fields[2].strip() if len(fields) == 3 else ""
        utterances.append(_utterance(src, relative, text, speaker, default_speaker))
    return utterances


def _from_text_files(src: Path, default_speaker: str) -> list[Utterance]:
    audio_files = sorted(path for path in src.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file())
    if not audio_files:
        raise CorpusError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) and no metadata.csv under {src}: expected SRC/[<speaker>/]<utt>.wav "
            f"with <utt>.txt beside it, or SRC/metadata.csv with lines {_LINE}"
        )
    utterances, skipped = [], []
    for audio in audio_files:
        text = read_text_file(audio.with_suffix(".txt"))
        if text:
            utterances.append(_utterance(src, audio.relative_to(src), text, "", default_speaker))
        else:
            skipped.append(audio.relative_to(src).as_posix())
    nested = sorted(path.parent for path in src.glob("*/metadata.csv"))
    if not utterances and nested:
        raise CorpusError(f"no metadata.csv in {src} itself, but in {', '.join(p.name for p in nested)}: "
                          f"prepare each of those folders, e.g. {nested[0]}")
    report_skipped(f"folder {src}", "without a .txt transcript beside the audio", skipped)
    return utterances
