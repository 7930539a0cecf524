"""Signal measures of a voice prompt: where the speech is, and what else the recording holds.

VALL-E continues its prompt's acoustics as faithfully as its voice, so noise, music,
clipping and room echo come back in every output. Each measure here is a small piece
of numpy on short-time spectra or frames at 16 kHz, so that checking a prompt costs
about a tenth of a second and needs no model: the thresholds that turn a measure into a finding are
chosen by `benchmarks/prompt_check.py` on degraded corpus speech, not by guess.
"""

from dataclasses import dataclass

import numpy as np

RATE = 16000
HOP = 160  # 10 ms frames
WINDOW = 512  # 32 ms Hann window, 31 Hz bins
TONE_WINDOW = 1024  # 64 ms, 16 Hz bins: fine enough to see that a peak does not move
EPS = 1e-12


def frame_seconds(n_frames: int) -> float:
    return n_frames * HOP / RATE


def power_spectrogram(samples: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Power spectra `[frames, window // 2 + 1]` of Hann-windowed frames centred every 10 ms.

    Frame t is centred on sample t * HOP whatever the window, so that masks from
    different windows line up. Scaled so that a frame's bins sum to its mean square
    (Parseval), so that band sums read as levels in dB re full scale.
    """
    x = np.pad(np.asarray(samples, dtype=np.float64), (window // 2, window // 2))
    hann = np.hanning(window)
    frames = np.lib.stride_tricks.sliding_window_view(x, window)[::HOP]
    spectrum = np.fft.rfft(frames * hann, axis=1)
    return 2 * (spectrum.real**2 + spectrum.imag**2) / (window * np.sum(hann**2))


def frequencies(window: int = WINDOW) -> np.ndarray:
    return np.fft.rfftfreq(window, 1 / RATE)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of every run of True in a 1-D mask, end exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def in_long_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """Cells of a `[time, ...]` mask that lie in a run of at least `length` True along time."""
    n = mask.shape[0]
    if n < length:
        return np.zeros_like(mask, dtype=bool)
    zero = np.zeros((1, *mask.shape[1:]), dtype=np.int64)
    count = np.cumsum(np.concatenate([zero, mask.astype(np.int64)]), axis=0)
    full = (count[length:] - count[:-length]) == length  # the window starting at t is all True
    full = np.concatenate([full, np.zeros((length - 1, *mask.shape[1:]), dtype=bool)])
    covered = np.cumsum(np.concatenate([zero, full.astype(np.int64)]), axis=0)
    start = np.maximum(np.arange(n) - length + 1, 0)
    return (covered[np.arange(n) + 1] - covered[start]) > 0


@dataclass(frozen=True)
class VadConfig:
    """Energy voice-activity detection: a frame is speech when its 100-5000 Hz level is
    well above the recording's floor and within `range_db` of its loud frames."""

    min_rise_db: float = 6.0  # above the floor (10th percentile of frame levels), at least
    rise_share: float = 0.3  # ... or this share of the floor-to-peak distance when larger
    range_db: float = 45.0  # never more than this below the peak (98th percentile)
    bridge_seconds: float = 0.25  # pauses shorter than this belong to the speech around them
    min_seconds: float = 0.06  # shorter bursts are clicks, not speech


def band_level_db(power: np.ndarray, low: float = 100.0, high: float = 5000.0) -> np.ndarray:
    """Level per frame of the `low`-`high` Hz band, dB re full scale."""
    freqs = frequencies(2 * (power.shape[1] - 1))
    return 10 * np.log10(power[:, (freqs >= low) & (freqs <= high)].sum(axis=1) + EPS)


def speech_mask(level_db: np.ndarray, config: VadConfig = VadConfig()) -> np.ndarray:
    """Frames that hold speech (or anything as loud as speech: music is found by `tonal_frames`)."""
    floor, peak = np.percentile(level_db, 10), np.percentile(level_db, 98)
    threshold = max(floor + max(config.min_rise_db, config.rise_share * (peak - floor)), peak - config.range_db)
    mask = level_db > threshold
    bridge, shortest = round(config.bridge_seconds * RATE / HOP), round(config.min_seconds * RATE / HOP)
    spans = runs(mask)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start - end < bridge:
            mask[end:start] = True
    for start, end in runs(mask):
        if end - start < shortest:
            mask[start:end] = False
    return mask


def active_level_db(samples: np.ndarray, speech: np.ndarray) -> float:
    """RMS level of the speech frames, dB re full scale (ITU P.56's "active speech level", roughly)."""
    x = np.asarray(samples, dtype=np.float64)
    n = min(len(speech), len(x) // HOP)
    frames = x[: n * HOP].reshape(n, HOP)[speech[:n]]
    return float(10 * np.log10(np.mean(frames**2) + EPS)) if frames.size else -120.0


# --- noise --------------------------------------------------------------------------------
NOISE_PERCENTILE = 2.0
NOISE_BIAS = 2.94  # mean / 2nd percentile of a band's smoothed power in steady noise (measured on white noise)


def bands(power: np.ndarray, low: float = 100.0, high: float = 7000.0) -> np.ndarray:
    """Power in bands of 4 bins (125 Hz) between `low` and `high`: `[frames, bands]`."""
    freqs = frequencies(2 * (power.shape[1] - 1))
    keep = power[:, (freqs >= low) & (freqs < high)]
    return keep[:, : keep.shape[1] // 4 * 4].reshape(len(keep), -1, 4).sum(axis=2)


def noise_floor(band_power: np.ndarray) -> np.ndarray:
    """Steady noise power per band: a low percentile of its power over time (minimum statistics).

    Speech leaves every band quiet now and then, even where a recording has no pause,
    and a room's echo dies away in the pauses, while steady noise never does. The power
    is smoothed over 30 ms first, and the percentile scaled to the mean it implies for
    steady noise, so that white noise at 10 dB below the speech reads as 10 dB.
    """
    if len(band_power) >= 3:
        band_power = np.lib.stride_tricks.sliding_window_view(band_power, 3, axis=0).mean(axis=2)
    return NOISE_BIAS * np.percentile(band_power, NOISE_PERCENTILE, axis=0)


def snr_db(power: np.ndarray, speech: np.ndarray, ceiling: float = 60.0) -> float:
    """Speech-to-noise ratio (dB): the speech frames' power against the steady noise floor."""
    if not speech.any():
        return -ceiling
    band_power = bands(power)
    noise = float(noise_floor(band_power).sum())
    signal = float(band_power[speech].mean(axis=0).sum())
    return float(np.clip(10 * np.log10(max(signal - noise, EPS) / max(noise, EPS)), -ceiling, ceiling))


def noise_level_db(power: np.ndarray) -> float:
    """The steady noise floor's level in the band `band_level_db` measures, dB re full scale."""
    return float(10 * np.log10(noise_floor(bands(power, 100.0, 5000.0)).sum() + EPS))


# --- clipping -----------------------------------------------------------------------------
def clipped_samples(samples: np.ndarray, min_run: int = 3) -> np.ndarray:
    """Samples in runs of `min_run` or more at the recording's peak level (a mask).

    Clipping flattens waveform tops into plateaus at one level, which speech never holds
    for three samples running. The plateau is sought at the file's own peak, so that a
    recording clipped at full scale and made quieter afterwards is still found.
    """
    x = np.asarray(samples, dtype=np.float64)
    clipped = np.zeros(len(x), dtype=bool)
    peak = np.abs(x).max(initial=0.0)
    if peak < 1e-3:
        return clipped
    tolerance = max(2 / 32768, 2e-3 * peak)  # two steps of 16-bit PCM, or 0.2 % of the peak
    level = np.sign(x) * (np.abs(x) >= peak - tolerance)
    for sign in (1, -1):
        for start, end in runs(level == sign):
            if end - start >= min_run:
                clipped[start:end] = True
    return clipped


def clipped_share(samples: np.ndarray) -> float:
    """Share of the samples that sit clipped (see `clipped_samples`)."""
    return float(clipped_samples(samples).mean()) if len(samples) else 0.0


def clipped_frames(samples: np.ndarray, n_frames: int) -> np.ndarray:
    """Per 10 ms frame (`n_frames` of them), whether any of its samples is clipped."""
    clipped = np.pad(clipped_samples(samples), (0, max(0, n_frames * HOP - len(samples))))
    return clipped[: n_frames * HOP].reshape(n_frames, HOP).any(axis=1)


# --- tones and music ----------------------------------------------------------------------
@dataclass(frozen=True)
class ToneConfig:
    """A tone is a narrow spectral peak that holds its frequency: a note, a chord, a hum, a beep.

    Speech has narrow peaks too (the harmonics of the voice), but its pitch glides: even
    the flattest synthetic voice moves its harmonics by more than `max_drift_hz` within
    `seconds`, while an instrument's held note does not move at all.
    """

    low_hz: float = 60.0
    high_hz: float = 6000.0
    prominence_db: float = 10.0  # above the median of the 17 bins around it
    within_db: float = 40.0  # and no more than this below the frame's loudest bin
    step_hz: float = 4.0  # a peak continues a track when this close to its last frequency
    seconds: float = 0.3  # tracks at least this long ...
    max_drift_hz: float = 4.0  # ... whose frequency stays within this range are tones


def spectral_peaks(samples: np.ndarray, config: ToneConfig) -> list[np.ndarray]:
    """Frequencies (Hz, interpolated between bins) of each frame's prominent narrow peaks."""
    level = 10 * np.log10(power_spectrogram(samples, TONE_WINDOW) + EPS)
    freqs = frequencies(TONE_WINDOW)
    band = np.flatnonzero((freqs >= config.low_hz) & (freqs <= config.high_hz))
    half = 8
    padded = np.pad(level, ((0, 0), (half, half)), mode="edge")
    median = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=1), axis=2)[:, band]
    local, left, right = level[:, band], level[:, band - 1], level[:, band + 1]
    peaks = ((local >= left) & (local >= right) & (local - median >= config.prominence_db)
             & (local >= level.max(axis=1, keepdims=True) - config.within_db))
    curvature = np.minimum(left - 2 * local + right, -1e-9)
    exact = (band + 0.5 * (left - right) / curvature) * freqs[1]  # the vertex of a parabola through 3 bins
    return [exact[t][peaks[t]] for t in range(len(level))]


def tonal_frames(samples: np.ndarray, config: ToneConfig = ToneConfig()) -> np.ndarray:
    """Frames (10 ms) during which some spectral peak holds its frequency (a tone, see `ToneConfig`)."""
    frames = spectral_peaks(samples, config)
    tonal = np.zeros(len(frames), dtype=bool)
    shortest = round(config.seconds * RATE / HOP)

    def close(track: tuple[int, list[float]], end: int) -> None:
        start, path = track
        if len(path) >= shortest and max(path) - min(path) <= config.max_drift_hz:
            tonal[start:end] = True

    tracks: list[tuple[int, list[float]]] = []  # (first frame, frequency per frame) of the tracks still going
    for t, found in enumerate(frames):
        taken = np.zeros(len(found), dtype=bool)
        going = []
        for track in tracks:
            gaps = np.where(taken, np.inf, np.abs(found - track[1][-1]))
            j = int(np.argmin(gaps)) if len(found) else -1
            if j >= 0 and gaps[j] <= config.step_hz:
                taken[j] = True
                track[1].append(float(found[j]))
                going.append(track)
            else:
                close(track, t)
        tracks = going + [(t, [float(f)]) for f in found[~taken]]
    for track in tracks:
        close(track, len(frames))
    return tonal


# --- reverberation ------------------------------------------------------------------------
@dataclass(frozen=True)
class DecayConfig:
    """Where the level falls after speech stops, a room cannot make it fall faster than
    60 dB per reverberation time: the steepest falls bound the room's decay.

    Only falls well above the noise floor count (noise cuts a fall short and makes it
    look slow), and the steep end of their slopes is taken, since speech itself often
    fades slowly. With the direct sound in every fall the figure reads low in very
    reverberant rooms (about 0.55 s for a reverberation time of 1 s).
    """

    span_frames: int = 10  # slope fitted over 100 ms
    start_db: float = 20.0  # the fall starts this far above the noise floor ...
    end_db: float = 6.0  # ... and stays this far above it
    steep_percentile: float = 90.0
    min_falls: int = 5  # fewer falling windows than this cannot tell


def decay_seconds(level_db: np.ndarray, speech: np.ndarray, floor_db: float,
                  config: DecayConfig = DecayConfig()) -> float | None:
    """An estimate of the reverberation time (s, 60 dB of decay) from the steepest falls of
    the level, or None when the recording has too few falls clear of the noise to tell."""
    n = config.span_frames
    if len(level_db) <= n:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(level_db, n)
    t = np.arange(n) - (n - 1) / 2
    slopes = windows @ t / np.sum(t**2)  # dB per frame
    falling = ((slopes < 0) & speech[: len(windows)] & (windows[:, 0] > floor_db + config.start_db)
               & (windows[:, -1] > floor_db + config.end_db) & (windows[:, 0] - windows[:, -1] > 3.0))
    if falling.sum() < config.min_falls:
        return None
    steepest = np.percentile(-slopes[falling], config.steep_percentile) * RATE / HOP  # dB per second
    return float(60.0 / steepest)


# --- two voices at once -------------------------------------------------------------------
@dataclass(frozen=True)
class OverlapConfig:
    """Two voices at once are two periodic sounds with unrelated periods in the same 20 ms.

    A voiced frame of one voice all but vanishes when it is subtracted from itself one
    pitch period earlier, x(t) - x(t - T). Where two voices sound together, the best
    period leaves the other voice behind, and a second, unrelated period cancels that
    remainder in turn (de Cheveigné's joint cancellation). Noise, breath, fricatives and
    a room's echo leave a remainder too, and now and then some period happens to cancel
    much of it, but only a voice holds that period from one frame to the next. Only the
    band below `lowpass_hz` is used: the low harmonics are strong and steady over 20 ms,
    while the upper formants of some voices are hardly periodic at all.
    """

    lowpass_hz: float = 1000.0
    low_hz: float = 60.0  # the pitch range searched
    high_hz: float = 400.0
    window_seconds: float = 0.02
    first_left: float = 0.15  # the best period leaves more than this share of the power ...
    second_left: float = 0.3  # ... and a second period cancels all but this share of what is left ...
    glide: float = 0.02  # ... and is within 2 % of the second period of the frame 10 ms before or after
    related: float = 0.06  # periods within 6 % of 1/3, 1/2, 1, 2 or 3 times the first are the same voice's


def lowpassed(samples: np.ndarray, hz: float) -> np.ndarray:
    """The samples without what lies above `hz` (cut in the spectrum of the whole recording, padded to a power of 2)."""
    size = 1 << max(int(np.ceil(np.log2(max(len(samples), 1)))), 1)
    spectrum = np.fft.rfft(np.asarray(samples, dtype=np.float64), size)
    spectrum[np.fft.rfftfreq(size, 1 / RATE) > hz] = 0
    return np.fft.irfft(spectrum, size)[: len(samples)]


def cancellation(segments: np.ndarray, window: int, lags: np.ndarray) -> np.ndarray:
    """What subtracting each segment's last `window` samples from those `lag` samples earlier leaves, `[segments, lags]`.

    The share of power left, sum (x(t) - x(t - T))^2 / sum (x(t)^2 + x(t - T)^2): near 0
    for a sound of period T, 1 for noise. Segments hold `max(lags)` samples before the window.
    """
    longest = segments.shape[1] - window
    size = 1 << int(np.ceil(np.log2(segments.shape[1] + window)))
    spectrum = np.fft.rfft(segments, size) * np.conj(np.fft.rfft(segments[:, longest:], size))
    cross = np.fft.irfft(spectrum, size)  # [:, k]: the window times the `window` samples from k on
    energy = np.concatenate([np.zeros((len(segments), 1)), np.cumsum(segments**2, axis=1)], axis=1)
    starts = longest - lags  # where the window `lag` samples earlier begins
    power = energy[:, starts + window] - energy[:, starts] + energy[:, -1:] - energy[:, longest:longest + 1]
    return (power - 2 * cross[:, starts]) / np.maximum(power, EPS)


def two_periods(samples: np.ndarray, frames: np.ndarray, config: OverlapConfig = OverlapConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Which of the 10 ms `frames` hold two periodic sounds at once, and the second one's period (samples)."""
    lags = np.arange(int(RATE / config.high_hz), int(np.ceil(RATE / config.low_hz)) + 1)
    longest, window = int(lags[-1]), round(config.window_seconds * RATE)
    reach = window + longest  # what one cancellation reads: the window and the longest lag before it
    pad = reach + longest
    x = np.pad(lowpassed(samples, config.lowpass_hz), (pad, window))
    # each frame's window and two longest lags before it: the remainder of the first cancellation reaches one back
    starts = frames * HOP - window // 2 - 2 * longest + pad
    segments = x[starts[:, None] + np.arange(reach + longest)]
    first = cancellation(segments[:, longest:], window, lags)
    period = lags[np.argmin(first, axis=1)]
    rows = np.arange(len(frames))[:, None]
    remainder = segments[:, longest:] - segments[rows, longest - period[:, None] + np.arange(reach)]
    ratio = np.log(lags[None, :] / period[:, None])
    related = np.any([np.abs(ratio - np.log(k)) < config.related for k in (1 / 3, 1 / 2, 1, 2, 3)], axis=0)
    second = np.where(related, np.inf, cancellation(remainder, window, lags))
    two = (first.min(axis=1) > config.first_left) & (second.min(axis=1) < config.second_left)
    return two, lags[np.argmin(second, axis=1)]


def two_voice_percent(samples: np.ndarray, speech: np.ndarray, config: OverlapConfig = OverlapConfig()) -> float:
    """Share of the speech (%) in which a second voice sounds under the first: frames with two unrelated
    periods, the second held, as a voice's pitch is, in the frame before or after."""
    frames = np.flatnonzero(speech)
    if len(frames) < 2:
        return 0.0
    two, second = two_periods(samples, frames, config)
    held = ((np.diff(frames) == 1) & two[1:] & two[:-1]
            & (np.abs(np.log(second[1:] / second[:-1])) < config.glide))
    counted = np.zeros(len(frames), dtype=bool)
    counted[1:] |= held
    counted[:-1] |= held
    return 100 * float(counted.mean())
