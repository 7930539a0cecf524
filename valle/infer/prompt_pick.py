"""The best few seconds of a long recording, to prompt with.

VALL-E prompts with about 3 s, and a longer prompt costs attention time without
helping; but which seconds matter: a stretch dense with speech, of the one main voice,
without noise, music or clipping, and saying many different sounds. `pick_window`
scores every stretch of `min_seconds` to `max_seconds` that begins and ends in a pause
(or, in speech without pauses, at a quiet moment) on those terms and returns the best.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from valle.audio import load_audio, prompt_samples, resample
from valle.errors import AudioError
from valle.infer import prompt_signal as signal
from valle.infer.prompt_check import PromptReport, check_prompt, speaker_embeddings

FRAMES_PER_SECOND = signal.RATE // signal.HOP


@dataclass(frozen=True)
class PickConfig:
    """How a window is chosen; recordings over `long_seconds` are cut to one before they prompt."""

    long_seconds: float = 10.0
    max_recording_seconds: float = 120.0  # picking from longer ones would take long
    min_seconds: float = 3.0
    max_seconds: float = 6.0
    margin_seconds: float = 0.1  # kept before the first and after the last word of a window
    enough_speech_seconds: float = 4.0  # more speech than this earns nothing more
    snr_ceiling_db: float = 30.0  # cleaner than this earns nothing more
    speaker_window_seconds: float = 1.6
    speaker_hop_seconds: float = 0.4


@dataclass(frozen=True)
class Pick:
    """The chosen window, in seconds of the recording, and what it holds."""

    start: float
    end: float
    speech_seconds: float
    speaker_similarity: float | None  # lowest cosine of its voice to the recording's main voice; None: not measured

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def cut(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return samples[round(self.start * sample_rate):round(self.end * sample_rate)]

    def describe(self) -> str:
        return f"{self.start:.2f}-{self.end:.2f} s ({self.speech_seconds:.1f} s of speech)"

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speech_seconds": round(self.speech_seconds, 3),
                "speaker_similarity": None if self.speaker_similarity is None else round(self.speaker_similarity, 4)}


def _boundaries(speech: np.ndarray, level_db: np.ndarray, longest: int) -> np.ndarray:
    """Frames where a window may begin or end: the edges of speech, and the quietest frame of
    every half second inside speech that runs on longer than a window without a pause."""
    cuts = [0, len(speech)]
    for start, end in signal.runs(speech):
        cuts += [start, end]
        if end - start > longest:
            half = FRAMES_PER_SECOND // 2
            cuts += [s + int(np.argmin(level_db[s:s + half])) for s in range(start, end - half, half)]
    return np.unique(np.clip(cuts, 0, len(speech)))


def _cumulative(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])


def pick_window(samples: np.ndarray, sample_rate: int, config: PickConfig = PickConfig()) -> Pick:
    """The best window of a recording (mono float samples): see the module's docstring."""
    x = resample(np.asarray(samples, dtype=np.float32), sample_rate, signal.RATE)
    total = len(x) / signal.RATE
    power = signal.power_spectrogram(x)
    level = signal.band_level_db(power)
    speech = signal.speech_mask(level)
    if not speech.any():
        raise AudioError("the recording holds no speech to pick a prompt from; record someone speaking")
    if total <= config.max_seconds:
        return Pick(0.0, total, signal.frame_seconds(int(speech.sum())), None)
    shortest, longest = round(config.min_seconds * FRAMES_PER_SECOND), round(config.max_seconds * FRAMES_PER_SECOND)
    margin = round(config.margin_seconds * FRAMES_PER_SECOND)
    cuts = _boundaries(speech, level, longest - 2 * margin)
    starts, ends = np.meshgrid(np.maximum(cuts - margin, 0), np.minimum(cuts + margin, len(speech)), indexing="ij")
    fits = (ends - starts >= shortest) & (ends - starts <= longest)
    if not fits.any():  # no pause lands well: windows of the longest length every half second
        grid = np.arange(0, len(speech) - longest + 1, FRAMES_PER_SECOND // 2)
        starts, ends = grid, grid + longest
    else:
        starts, ends = starts[fits], ends[fits]

    # Per frame: speech, how far above the noise floor, and whether a tone or clipping is in it.
    clean_db = np.clip(level - signal.noise_level_db(power), 0, config.snr_ceiling_db)
    tonal = signal.tonal_frames(x)[: len(speech)]
    clipped = signal.clipped_frames(x, len(speech))
    sums = {name: _cumulative(values * speech) for name, values in
            (("speech", np.ones(len(speech))), ("clean", clean_db), ("tonal", tonal), ("clipped", clipped))}

    def total_of(name: str) -> np.ndarray:
        return sums[name][ends] - sums[name][starts]

    speech_frames = np.maximum(total_of("speech"), 1)
    speech_seconds = total_of("speech") / FRAMES_PER_SECOND
    score = (np.minimum(speech_seconds, config.enough_speech_seconds)
             + 2.0 * speech_frames / (ends - starts)  # dense: few pauses
             + 0.1 * total_of("clean") / speech_frames  # up to 3 for 30 dB above the noise
             - 5.0 * total_of("tonal") / speech_frames
             - 20.0 * total_of("clipped") / speech_frames)
    similarity = _main_voice_similarity(x, speech, starts, ends, config)
    if similarity is not None:
        score = score + 10.0 * np.minimum(similarity - 0.85, 0)  # a window of another voice loses
    best = int(np.argmax(score))
    return Pick(starts[best] / FRAMES_PER_SECOND, min(ends[best] / FRAMES_PER_SECOND, total), float(speech_seconds[best]),
                None if similarity is None else float(similarity[best]))


def _main_voice_similarity(x: np.ndarray, speech: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           config: PickConfig) -> np.ndarray | None:
    """Per window, the lowest cosine between the d-vectors of its speech and the recording's main voice.

    The main voice is the medoid of d-vectors taken every `speaker_hop_seconds` over the
    speech: the one most like all the others. None when Resemblyzer is not installed.
    """
    size = round(config.speaker_window_seconds * FRAMES_PER_SECOND)
    hop = round(config.speaker_hop_seconds * FRAMES_PER_SECOND)
    centres = [t for t in range(size // 2, len(speech) - size // 2, hop) if speech[t - size // 2:t + size // 2].mean() > 0.5]
    if len(centres) < 2:
        return None
    vectors = speaker_embeddings([x[(t - size // 2) * signal.HOP:(t + size // 2) * signal.HOP] for t in centres])
    if vectors is None:
        return None
    similarity = vectors @ vectors.T
    main = vectors[int(np.argmax(similarity.sum(axis=1)))]
    to_main, centres = vectors @ main, np.array(centres)
    out = np.ones(len(starts))
    for i, (start, end) in enumerate(zip(starts, ends)):
        inside = (centres >= start + size // 4) & (centres <= end - size // 4)
        if inside.any():
            out[i] = to_main[inside].min()
    return out


@dataclass
class PreparedPrompt:
    """A prompt file made ready for synthesis: what it prompts with, and what was found on the way."""

    samples: np.ndarray  # trimmed and loudness-normalised, at the sample rate asked for
    text: str | None  # the transcript; None when a window was picked (its words are then recognised)
    seconds: float  # the recording's length
    pick: Pick | None  # the window used, when the recording was long
    report: PromptReport | None  # the check of what prompts (the window, as recorded), when asked for

    def to_dict(self) -> dict:
        """The report as the HTTP API returns it: the check, and the window used."""
        report = self.report.to_dict() if self.report else {}
        return {**report, "recording_seconds": round(self.seconds, 3), "picked": self.pick.to_dict() if self.pick else None}

    def describe_pick(self, name: str, had_text: bool) -> str:
        assert self.pick is not None
        return (f"{name} is {self.seconds:.1f} s long: prompting with its best {self.pick.seconds:.1f} s, "
                f"{self.pick.describe()}; " + ("the transcript given covers the whole recording, so that of the window is "
                                               "recognised" if had_text else "its words are recognised"))


def prepare_prompt(path: str | Path, sample_rate: int, text: str | None, check: bool = False,
                   config: PickConfig = PickConfig()) -> PreparedPrompt:
    """Load a prompt file; a recording over `config.long_seconds` is cut to its best window first.

    With `check`, the part that prompts is checked as recorded (`check_prompt`), before
    its silence is trimmed and its loudness normalised.
    """
    recording = load_audio(path, sample_rate)
    seconds = len(recording) / sample_rate
    if seconds > config.max_recording_seconds:
        raise AudioError(f"prompt {path} is {seconds:.0f} s long; valle picks a prompt from recordings of up to "
                         f"{config.max_recording_seconds:g} s: cut a part of it")
    pick = pick_window(recording, sample_rate, config) if seconds > config.long_seconds else None
    if pick is not None:
        recording, text = pick.cut(recording, sample_rate), None
    report = check_prompt(recording, sample_rate, text) if check else None
    return PreparedPrompt(prompt_samples(recording, sample_rate, f"prompt {path}"), text, seconds, pick, report)
