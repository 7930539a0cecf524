"""What every corpus reader shares: finding files, reading transcripts, measuring audio.

Readers only know their corpus's layout. They list utterances with a duration of 0;
`prepare_corpus` then measures all durations in one parallel pass and writes the
manifests, so that walking, measuring and writing exist once.

Two rules hold for every corpus:
- audio that a transcript or metadata line *names* but that does not exist is an
  error (the download or unpacking is broken, and training on a silent subset would
  hide it);
- a file whose partner found *by name* is missing or empty (a wav without its
  `.txt`, a transcript without its wav) is skipped and counted, because real corpora
  ship such gaps (LibriTTS's utterances without normalized text, VCTK's p315).
"""

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import soundfile
from tqdm import tqdm

from valle.data.manifest import Utterance
from valle.errors import CorpusError

log = logging.getLogger("valle.data.corpora")

Listing = dict[str, list[Utterance]]
"""Manifest name -> its utterances, as a reader returns them (durations not yet measured)."""

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def check_folder(src: Path) -> Path:
    """Fail early, in plain words, when SRC is not an existing folder."""
    if not src.exists():
        raise CorpusError(f"corpus folder {src} does not exist; pass the folder the corpus was unpacked into")
    if not src.is_dir():
        raise CorpusError(f"{src} is a file, not a folder; pass the folder the corpus was unpacked into")
    return src


def by_subset(src: Path, pattern: str) -> dict[str, list[Path]]:
    """Files matching `<speaker>/<chapter>/<pattern>` in each subset, grouped by subset name.

    LibriTTS and LibriSpeech unpack to `<corpus>/<subset>/<speaker>/<chapter>/`; SRC may
    be that corpus folder or a single subset folder, which names its only subset.
    """
    files = sorted(src.glob(f"*/*/{pattern}"))
    if files:
        return {src.resolve().name: files}
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(src.glob(f"*/*/*/{pattern}")):
        groups[path.relative_to(src).parts[0]].append(path)
    return dict(groups)


def clean_text(text: str) -> str:
    """Collapse runs of whitespace and line breaks into single spaces."""
    return " ".join(text.split())


def read_text_file(path: Path) -> str:
    """The transcript in `path`, or "" when there is none (the caller skips and counts it)."""
    try:
        return clean_text(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read transcript {path}: {e}; is the file UTF-8 text?") from None


def read_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a UTF-8 text file, each with its 1-based line number."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read {path}: {e}; is the file UTF-8 text?") from None
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]


def read_table(path: Path, widths: Sequence[int], expected: str, header: Sequence[str] = ()) -> list[tuple[int, list[str]]]:
    """Rows of a pipe-separated file without quoting, each with its line number.

    Quotes are ordinary characters (LJSpeech's texts contain them), so a plain split on
    `|` is the only correct parse. `widths` are the allowed field counts, `expected`
    describes a line for the error messages, and a first row spelling out (a prefix of)
    `header` is a header and dropped.
    """
    rows = [(n, line.split("|")) for n, line in read_lines(path)]
    if rows and header and [field.strip().lower() for field in rows[0][1]] == list(header[: len(rows[0][1])]):
        rows = rows[1:]
    if not rows:
        raise CorpusError(f"{path} has no rows: expected lines {expected}")
    for n, fields in rows:
        if len(fields) not in widths:
            raise CorpusError(f"{path} line {n} has {len(fields)} field(s) separated by '|': expected {expected}")
    return rows


def listed_audio(path: Path, where: str) -> Path:
    """`path`, after making sure that the audio a transcript line names does exist."""
    if not path.is_file():
        raise CorpusError(f"{where} names audio {path}, which does not exist; is the corpus completely unpacked?")
    return path


def report_skipped(corpus: str, reason: str, ids: Sequence[str]) -> None:
    """Say how many utterances were left out and why, with a few examples."""
    if ids:
        examples = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        log.warning("%s: skipped %d utterance(s) %s: %s", corpus, len(ids), reason, examples)


def audio_duration(path: Path) -> float:
    """Seconds of audio in `path`, from its header only (fast even for long files)."""
    try:
        return soundfile.info(str(path)).duration
    except (soundfile.SoundFileError, OSError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise CorpusError(f"cannot read audio file {path} ({reason}); replace or delete it and prepare again") from None


def with_durations(rows: Iterable[Utterance], desc: str) -> list[Utterance]:
    """`rows` with their durations measured, in threads: header reads wait on the disk, not the CPU."""
    rows = list(rows)
    pool = ThreadPoolExecutor(min(32, (os.cpu_count() or 1) + 4))
    try:
        durations = tqdm(pool.map(audio_duration, (row.audio for row in rows)), total=len(rows), desc=desc, unit="file", disable=None)
        return [replace(row, duration=d) for row, d in zip(rows, durations)]
    finally:
        pool.shutdown(cancel_futures=True)  # after a bad file, do not measure the rest
