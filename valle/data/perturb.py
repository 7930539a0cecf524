"""More people from the few recorded ones: copies of each speaker with another pitch and another vocal tract.

A zero-shot stage learns what a voice may be from its training speakers, and the human speech
of this project's corpora comes from a few dozen people; the stage keeps unheard real voices
far less well than their codec does. Each recorded speaker here gives `copies` new ones, each
with a pitch factor and a vocal-tract factor of its own, applied to every clip of the speaker:
the formants are first moved by tract / pitch with the spectral envelope alone (`warp_formants`),
then the clip is resampled, which moves pitch and formants together by `pitch` (and the tempo:
a higher copy speaks a little faster), so that the formants end at `tract` and the harmonics at
`pitch`, as the synthetic corpus makes Piper's speakers from one man. The words stay, so the
transcripts do.

Give it training speakers only: a held-out speaker's copy would be heard in training. Copies
are named `<speaker>+p<k>` (ids likewise), their audio lies under OUT/audio/, and OUT/perturbed.jsonl
lists them; factors come from the speaker's name and the seed alone, so a run gives the same
bytes in any order, and an interrupted run keeps the clips already written. OUT/perturb.json
records the settings, and a run with other settings into the same OUT is refused: its clips
would be mixed with the first run's.
"""

import json
import multiprocessing
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from valle.audio import audio_duration, read_audio, to_mono, warp_formants, write_audio
from valle.config import DictConfig
from valle.data.manifest import Utterance, read_manifest, write_manifest
from valle.errors import ConfigError
from valle.files import atomic_write, read_json

MANIFEST = "perturbed.jsonl"
COPY_MARK = "+p"  # a copy's name: its source's, this, and the copy's number
SETTINGS = "perturb.json"


@dataclass(frozen=True)
class PerturbConfig(DictConfig):
    kind = "speaker perturbation"

    copies: int = 2  # new speakers per recorded speaker
    pitch: tuple[float, float] = (0.8, 1.25)  # range of a copy's pitch factor (log-uniform)
    tract: tuple[float, float] = (0.9, 1.12)  # range of its vocal-tract (formant) factor (log-uniform)
    min_apart: float = 0.06  # each factor of a copy at least this far (log) from 1: no copy is the speaker again
    seed: int = 0

    def __post_init__(self) -> None:
        ranges_ok = all(0.5 <= low < 1 < high <= 2 for low, high in (self.pitch, self.tract))
        if self.copies < 1 or not ranges_ok or not 0 <= self.min_apart < 0.1:
            raise ConfigError("a speaker perturbation needs copies >= 1, pitch and tract ranges low < 1 < high within "
                              "[0.5, 2], and min_apart in [0, 0.1)")


@dataclass(frozen=True)
class Copy:
    """One new speaker made from `source`: its name (the source's with `suffix`) and factors."""

    source: str
    suffix: str
    pitch: float
    tract: float

    @property
    def speaker(self) -> str:
        return self.source + self.suffix


def design_copies(speakers: list[str], config: PerturbConfig) -> list[Copy]:
    """`config.copies` new speakers for each of `speakers`, their factors drawn from the name and the seed alone."""
    copies = []
    for speaker in speakers:
        for k in range(1, config.copies + 1):
            rng = random.Random(f"{config.seed}:{speaker}:{k}")
            pitch, tract = (_factor(rng, *bounds, config.min_apart) for bounds in (config.pitch, config.tract))
            copies.append(Copy(speaker, f"{COPY_MARK}{k}", round(pitch, 3), round(tract, 3)))
    return copies


def _factor(rng: random.Random, low: float, high: float, min_apart: float) -> float:
    """Log-uniform in [low, high] with at least `min_apart` (log) between it and 1."""
    while True:
        factor = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        if abs(np.log(factor)) >= min_apart:
            return factor


def perturb(samples: np.ndarray, sample_rate: int, pitch: float, tract: float) -> np.ndarray:
    """The clip `samples` spoken by a speaker with harmonics at `pitch` times and formants at `tract` times the
    original's, at `sample_rate`; its length divided by `pitch`."""
    warped = warp_formants(samples, tract / pitch, sample_rate)
    # Read as if recorded at sample_rate * pitch, every frequency moves by `pitch` and the clip gets shorter.
    return soxr.resample(warped, sample_rate * pitch, sample_rate, quality="HQ").astype(np.float32)


def _render(job: tuple[Utterance, Copy, Path]) -> float:
    """Write one copy's clip unless it is there; its duration in seconds."""
    row, copy, path = job
    if not path.exists():
        samples, rate = read_audio(row.audio)
        samples = perturb(to_mono(samples), rate, copy.pitch, copy.tract)
        peak = float(np.abs(samples).max())
        write_audio(path, samples * min(1.0, 0.98 / peak) if peak > 0 else samples, rate)
    return audio_duration(path)


def perturb_speakers(manifest: str | Path, out: str | Path, config: PerturbConfig = PerturbConfig(),
                     workers: int = 1) -> Path:
    """Copies of every speaker of `manifest` into `out` (`MANIFEST` and audio/); returns the manifest's path."""
    rows, out = read_manifest(manifest), Path(out)
    _claim(out, config)
    copies: dict[str, list[Copy]] = {}
    for copy in design_copies(sorted({row.speaker for row in rows}), config):
        copies.setdefault(copy.source, []).append(copy)
    jobs = [(row, copy, out / "audio" / copy.speaker / f"{row.id}{copy.suffix}.wav") for row in rows for copy in copies[row.speaker]]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        durations = list(tqdm(pool.imap(_render, jobs, chunksize=8), total=len(jobs), desc="perturbing", unit="clip"))
    # A band-limited recording's band edge moves with its pitch.
    write_manifest((replace(row, id=path.stem, audio=path, speaker=copy.speaker, duration=duration,
                            source_rate=row.source_rate and round(row.source_rate * copy.pitch))
                    for (row, copy, path), duration in zip(jobs, durations)), out / MANIFEST)
    return out / MANIFEST


def _claim(out: Path, config: PerturbConfig) -> None:
    """Record `config` in `out`, or check that the clips already there were made with its factors (more or fewer
    copies may follow: a copy's factors do not depend on how many there are)."""
    path = out / SETTINGS
    settings = json.loads(json.dumps(config.to_dict()))  # its ranges as JSON gives them back: lists
    if path.exists():
        recorded = read_json(path, "speaker perturbation settings")
        if {**recorded, "copies": None} != {**settings, "copies": None}:
            raise ConfigError(f"{out} holds copies made with other settings ({path.read_text().strip()}); give another "
                              "output folder, or the same settings to resume")
        return
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        json.dump(settings, f)
