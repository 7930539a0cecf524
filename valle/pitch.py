"""A recording's pitch, frame by frame at the codec's rate: the F0 of each voiced frame, 0 where none.

The frame stage is told each frame's pitch in training and predicts it in synthesis (as
FastSpeech 2 does): regressing a frame's latent without it averages over every pitch the
voice might take there, and a voice rendered from that average has no pitch at all. The
pitch a voice speaks at is measured on its prompt, so a voice keeps its register.

The tracker is YIN (de Cheveigné and Kawahara, 2002) with its aperiodicity as the voicing
decision, vectorised over frames with FFTs: it runs at a few hundred times real time on one
core, fast enough to track a whole corpus, and adds no compile step to the first synthesis.
"""

import math

import numpy as np

F0_RANGE = (50.0, 500.0)  # Hz: low male to high child voices
YIN_THRESHOLD = 0.15  # the first dip of the normalised difference below this is the period
MAX_APERIODICITY = 0.4  # frames whose best dip stays above this are unvoiced
SILENCE_DB = -50.0  # frames this far below the recording's loudest are unvoiced, however periodic
FLOOR_DBFS = -70.0  # and frames quieter than this in any recording (digital silence is perfectly "periodic")


def track_pitch(samples: np.ndarray, sample_rate: int, frame_rate: float) -> np.ndarray:
    """`[T]` float32: the F0 in Hz of each frame of mono `samples` (frame t covers samples
    [t * hop, (t + 1) * hop), hop = sample_rate / frame_rate), 0 for unvoiced frames."""
    samples = np.asarray(samples, dtype=np.float64)
    hop = sample_rate / frame_rate
    n_frames = max(1, math.ceil(round(len(samples) / hop, 6)))
    window = math.ceil(sample_rate / F0_RANGE[0])  # one period of the lowest F0
    min_lag, max_lag = math.floor(sample_rate / F0_RANGE[1]), window
    span = window + max_lag
    centres = np.round((np.arange(n_frames) + 0.5) * hop).astype(np.int64)
    padded = np.pad(samples, (window, span + window))
    frames = np.lib.stride_tricks.sliding_window_view(padded, span)[centres + window - window // 2]  # [T, span]

    # d(lag) = sum over the window of (x[j] - x[j + lag])^2 = energy(0) + energy(lag) - 2 r(lag)
    n_fft = 1 << (span + window - 1).bit_length()
    r = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :window], n_fft)) * np.fft.rfft(frames, n_fft), n_fft)[:, :max_lag + 1]
    squares = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    energy = squares[:, window:window + max_lag + 1] - squares[:, :max_lag + 1]  # [T, lag]
    difference = np.maximum(energy[:, :1] + energy - 2 * r, 0.0)
    lags = np.arange(max_lag + 1)
    normalised = np.ones_like(difference)  # the cumulative mean normalised difference
    running = np.cumsum(difference[:, 1:], axis=1)
    normalised[:, 1:] = difference[:, 1:] * lags[1:] / np.maximum(running, 1e-12)

    searched = normalised[:, min_lag:max_lag]
    below = searched < YIN_THRESHOLD
    # The first dip below the threshold (its local minimum), else the deepest point.
    first = np.where(below.any(axis=1), below.argmax(axis=1), searched.argmin(axis=1))
    rows = np.arange(n_frames)
    lag = first.copy()
    for _ in range(8):  # walk down to the bottom of the dip (a few samples at most)
        step = (lag + 1 < searched.shape[1]) & (searched[rows, np.minimum(lag + 1, searched.shape[1] - 1)] < searched[rows, lag])
        if not step.any():
            break
        lag = lag + step
    aperiodicity = searched[rows, lag]
    lag = lag + min_lag
    # Parabolic interpolation of the dip for a period between samples.
    left, centre, right = (normalised[rows, np.clip(lag + k, 0, max_lag)] for k in (-1, 0, 1))
    curvature = left - 2 * centre + right
    shift = np.where(curvature > 1e-9, 0.5 * (left - right) / np.maximum(curvature, 1e-9), 0.0).clip(-1, 1)
    f0 = sample_rate / (lag + shift)

    loudness = 10 * np.log10(energy[:, 0] / window + 1e-12)
    voiced = (aperiodicity < MAX_APERIODICITY) & (loudness > max(loudness.max() + SILENCE_DB, FLOOR_DBFS))
    voiced &= (f0 >= F0_RANGE[0]) & (f0 <= F0_RANGE[1])
    return np.where(voiced, f0, 0.0).astype(np.float32)

