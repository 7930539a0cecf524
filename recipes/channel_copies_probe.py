"""Copies of every recorded speaker in another room and through another microphone.

One channel per copy, named <speaker>+c1 and drawn from the speaker's name alone: an equaliser curve
(8 bands of N(0, 4 dB) and a tilt of +-6 dB), a telephone band in a quarter of them, a room's
reverberation (RT60 0.2-0.7 s, direct-to-reverberant 0-12 dB) in three fifths, a steady coloured noise
(SNR 15-35 dB) in half. The same channel on every clip of a copy, so that a prompt cut from any of its
clips carries it (recipes/tournament.md).

    python recipes/channel_copies_probe.py MANIFEST OUT       # OUT/channels.jsonl and OUT/audio/
"""

import multiprocessing
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from valle.audio import audio_duration, read_audio, to_mono, write_audio
from valle.data.manifest import Utterance, read_manifest, write_manifest

SUFFIX = "+c1"


def design(speaker: str, seed: int = 0) -> dict:
    rng = random.Random(f"{seed}:{speaker}:channel")
    return {"eq": [rng.gauss(0, 4) for _ in range(8)], "tilt": rng.uniform(-6, 6),
            "phone": rng.random() < 0.25, "rt60": rng.uniform(0.2, 0.7) if rng.random() < 0.6 else 0.0,
            "drr": rng.uniform(0, 12), "snr": rng.uniform(15, 35) if rng.random() < 0.5 else None,
            "noise_slope": rng.uniform(0, 1.5), "seed": rng.randrange(1 << 30)}


def gain(channel: dict, freqs: np.ndarray) -> np.ndarray:
    """The equaliser's linear gain at `freqs` (Hz): its bands between 100 Hz and 7 kHz, the tilt, the phone's low cut."""
    points = np.geomspace(100, 7000, 8)
    log_f = np.log(np.clip(freqs, 50, 8000))
    tilt = channel["tilt"] * (log_f - np.log(100)) / (np.log(8000) - np.log(100)) - channel["tilt"] / 2
    db = np.interp(log_f, np.log(points), channel["eq"]) + tilt - 30 * channel["phone"] * (freqs < 250)
    return 10 ** (db / 20)


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


def apply(samples: np.ndarray, rate: int, channel: dict) -> np.ndarray:
    """`samples` through the channel: equaliser, telephone band, room, noise; peak kept under 0.95."""
    rng = np.random.default_rng(channel["seed"])
    x, taps = samples.astype(np.float64), 1024
    fir = np.roll(np.fft.irfft(gain(channel, np.fft.rfftfreq(taps, 1 / rate)), taps), taps // 2) * np.hanning(taps)
    x = fft_convolve(x, fir)[taps // 2: taps // 2 + len(samples)]
    if channel["phone"]:
        x = soxr.resample(soxr.resample(x, rate, 8000, quality="HQ"), 8000, rate, quality="HQ")[:len(samples)]
    if channel["rt60"]:
        t = np.arange(int(channel["rt60"] * rate)) / rate
        tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / channel["rt60"])
        tail[: int(0.002 * rate)] = 0
        tail *= np.sqrt(10 ** (-channel["drr"] / 10) / np.sum(tail**2))
        tail[0] = 1.0
        x = fft_convolve(x, tail)[:len(samples)]
    if channel["snr"] is not None:
        f = np.fft.rfftfreq(len(x), 1 / rate)
        noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(len(x))) / np.maximum(f, 50) ** (channel["noise_slope"] / 2), len(x))
        active = x[np.abs(x) > 0.01 * np.abs(x).max()]
        power = np.mean(active**2) if len(active) else np.mean(x**2)
        x = x + noise * np.sqrt(power / 10 ** (channel["snr"] / 10) / np.mean(noise**2))
    peak = np.abs(x).max()
    return (x * min(1.0, 0.95 / peak) if peak > 0 else x).astype(np.float32)


def render(job: tuple[Utterance, dict, Path]) -> float:
    row, channel, path = job
    if not path.exists():
        samples, rate = read_audio(row.audio)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, apply(to_mono(samples), rate, channel), rate)
    return audio_duration(path)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows, out = read_manifest(sys.argv[1]), Path(sys.argv[2])
    channels = {speaker: design(speaker) for speaker in sorted({row.speaker for row in rows})}
    jobs = [(row, channels[row.speaker], out / "audio" / f"{row.speaker}{SUFFIX}" / f"{row.id}{SUFFIX}.wav") for row in rows]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        durations = list(tqdm(pool.imap(render, jobs, chunksize=8), total=len(jobs), desc="channels"))
    write_manifest((replace(row, id=path.stem, audio=path, speaker=f"{row.speaker}{SUFFIX}", duration=duration,
                            source_rate=8000 if channel["phone"] else row.source_rate)
                    for (row, channel, path), duration in zip(jobs, durations)), out / "channels.jsonl")


if __name__ == "__main__":
    main()
