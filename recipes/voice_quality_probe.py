"""How two models render a voice, against its recordings: spectral tilt, flatness, transitions, periodicity.

    python recipes/voice_quality_probe.py SCORES.json VOICES MODEL[:prompt_map:speed] MODEL[...] [N]

For the first N (6) utterances of each of the comma-separated VOICES in a `benchmarks/zero_shot.py --out` file of the
test split (its prompts, their transcripts from runs/corpus10h/test.jsonl), each MODEL speaks the sentence as the
benchmark has it say it (`default` for the bundled model; `:prompt_map:speed` overrides those settings). Each output and
each recording is measured over its sounding frames (40 ms, within 35 dB of the loudest) at 16 kHz:
- tilt: the slope of the long-term average spectrum from 200 Hz to 5 kHz, in dB per octave (steeper: darker);
- flatness: the spectral flatness there, in dB (nearer 0: noisier, less tonal);
- flux: how far the log spectrum (bands of 200 Hz) moves from frame to frame (lower: smoother transitions);
- periodicity: the harmonics-to-noise ratio of the voiced frames, in dB (from the autocorrelation's peak at a lag of
  2.5-16 ms), and the share of frames voiced (that peak above 0.3).
Printed as a markdown table, a row per voice and system, averaged over its utterances.
"""

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from valle.data.manifest import Utterance, read_manifest
from valle.infer import VallE
from valle.model.sampling import SamplingConfig

RATE = 16000
FRAME, HOP = 640, 160  # 40 ms windows every 10 ms
BAND = (200.0, 5000.0)
LAGS = (40, 256)  # 2.5-16 ms: pitch from 62.5 to 400 Hz
TEST = Path("runs/corpus10h/test.jsonl")  # the split the benchmark's scores were read on


def first_utterances(scores: dict, voices: list[str], n: int) -> dict[str, list[dict]]:
    """Each of `voices`: its first `n` utterances in a `benchmarks/zero_shot.py --out` file's `scores`."""
    chosen: dict[str, list[dict]] = {voice: [] for voice in voices}
    for u in scores["utterances"]:
        if u["speaker"] in chosen and len(chosen[u["speaker"]]) < n:
            chosen[u["speaker"]].append(u)
    return chosen


def spoken(valle: VallE, sampling: SamplingConfig, utterances: list[dict],
           test: dict[str, Utterance]) -> list[tuple[np.ndarray, int]]:
    """(samples, rate) of each scored utterance as the benchmark has the model say it: its prompt, with the prompt's
    transcript from `test` (the split's utterances by id), unwatermarked."""
    outputs = [valle.synthesize(u["text"], u["prompt"], test[Path(u["prompt"]).stem].text, sampling=sampling,
                                watermark=False) for u in utterances]
    return [(o.samples, o.sample_rate) for o in outputs]


def at_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    mono = samples.mean(1) if samples.ndim > 1 else samples
    return soxr.resample(mono, rate, RATE) if rate != RATE else mono


def measure(samples: np.ndarray) -> list[float]:
    """[tilt, flatness, flux, periodicity, share voiced] of 16 kHz `samples`."""
    starts = np.arange(0, len(samples) - FRAME, HOP)
    frames = np.stack([samples[i:i + FRAME] for i in starts]) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-10
    energy = 10 * np.log10(power.sum(1))
    sounding = energy > energy.max() - 35
    frequencies = np.fft.rfftfreq(FRAME, 1 / RATE)
    band = (frequencies >= BAND[0]) & (frequencies <= BAND[1])
    spectrum = power[sounding][:, band]
    tilt = np.polyfit(np.log2(frequencies[band]), 10 * np.log10(spectrum.mean(0)), 1)[0]
    flatness = np.mean(10 * np.log10(np.exp(np.log(spectrum).mean(1)) / spectrum.mean(1)))
    bands = np.log(spectrum[:, :spectrum.shape[1] // 8 * 8].reshape(len(spectrum), -1, 8).mean(2))
    flux = np.mean(np.linalg.norm(np.diff(bands, axis=0), axis=1))
    ratios = []
    for frame in frames[sounding]:
        frame = frame - frame.mean()
        correlation = np.correlate(frame, frame, "full")[FRAME - 1:]
        if correlation[0] > 0:
            peak = correlation[LAGS[0]:LAGS[1]].max() / correlation[0]
            if peak > 0.3:
                ratios.append(10 * np.log10(peak / (1 - peak + 1e-6)))
    return [tilt, flatness, flux, float(np.mean(ratios)) if ratios else np.nan, len(ratios) / sounding.sum()]


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    scores, voices, models = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2].split(","), sys.argv[3:]
    n = int(models.pop()) if models[-1].isdigit() else 6
    test = {u.id: u for u in read_manifest(TEST)}
    torch.set_num_threads(2)
    systems = {}
    for spec in models:
        name, *settings = spec.split(":")
        valle = VallE.from_pretrained(name)
        sampling = valle.sampling.updated(prompt_map=float(settings[0]), speed=float(settings[1])) if settings else valle.sampling
        systems[Path(name).name] = (valle, sampling)
    print("| voice | system | tilt (dB/octave) | flatness (dB) | flux | periodicity (dB) | voiced |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for voice, utterances in first_utterances(scores, voices, n).items():
        rows = {"recordings": [measure(at_rate(*sf.read(test[u["id"]].audio, dtype="float32"))) for u in utterances]}
        for name, (valle, sampling) in systems.items():
            rows[name] = [measure(at_rate(*audio)) for audio in spoken(valle, sampling, utterances, test)]
        for name, values in rows.items():
            tilt, flatness, flux, periodicity, voiced = np.nanmean(np.array(values), 0)
            print(f"| {voice} | {name} | {tilt:.2f} | {flatness:.1f} | {flux:.2f} | {periodicity:.1f} | {voiced:.0%} |")


if __name__ == "__main__":
    main()
