"""Manifests: one JSON object per utterance, the common currency of every corpus reader.

A row holds `id, audio, text, speaker, language, duration`, and `source_rate` where the
recording was made at a lower rate than its file has (see `Utterance`). Audio paths are
stored relative to the manifest's folder when the audio lies beneath it, so that a corpus
folder can be moved or copied as a whole; `read_manifest` resolves them again.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from valle.errors import CorpusError
from valle.files import atomic_write

DEFAULT_LANGUAGE = "en-us"


@dataclass(frozen=True)
class Utterance:
    """One recording with its transcript; `duration` is in seconds.

    `source_rate` is set only for band-limited audio: the rate (Hz) the recording was made
    at when it is lower than the file's, e.g. 8000 for telephone prompts resampled to
    16 kHz, which hold nothing above 4 kHz. Rows without it (every earlier manifest) are
    full-band; it is left out of the JSON when unset, so older readers see the same rows.
    """

    id: str
    audio: Path
    text: str
    speaker: str
    language: str = DEFAULT_LANGUAGE
    duration: float = 0.0
    source_rate: int | None = None


_FIELDS = tuple(f.name for f in fields(Utterance))
_REQUIRED = ("id", "audio", "text", "speaker")


def write_manifest(rows: Iterable[Utterance], path: str | Path) -> int:
    """Write `rows` as JSONL atomically; returns the number of rows written."""
    path = Path(path)
    base = path.parent.resolve()
    n = 0
    seen: set[str] = set()
    with atomic_write(path) as f:
        for row in rows:
            if row.id in seen:
                raise CorpusError(f"duplicate utterance id {row.id!r} while writing {path}; ids must be unique")
            seen.add(row.id)
            record = asdict(row)
            audio = Path(row.audio).resolve()
            record["audio"] = str(audio.relative_to(base)) if audio.is_relative_to(base) else str(audio)
            record["duration"] = round(float(row.duration), 4)
            if row.source_rate is None:
                del record["source_rate"]
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSONL manifest, resolving relative audio paths against its folder."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"manifest {path} does not exist; create one with `valle data prepare` or `valle data synth-corpus`")
    rows = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{line_no} is not valid JSON ({e.msg}); the manifest is corrupt, prepare it again") from None
            missing = [k for k in _REQUIRED if k not in record]
            if missing:
                raise CorpusError(f"{path}:{line_no} lacks the field(s) {', '.join(missing)}; every row needs {', '.join(_REQUIRED)}")
            record = {k: v for k, v in record.items() if k in _FIELDS}
            audio = Path(record["audio"])
            record["audio"] = audio if audio.is_absolute() else path.parent / audio
            rows.append(Utterance(**record))
    return rows


def summarize(rows: Sequence[Utterance]) -> str:
    """One line that says how much a manifest holds: utterances, hours, speakers, languages."""
    hours = sum(row.duration for row in rows) / 3600
    languages = sorted({row.language for row in rows})
    return f"{len(rows)} utterances, {hours:.2f} h, {len({row.speaker for row in rows})} speakers, {', '.join(languages)}"
