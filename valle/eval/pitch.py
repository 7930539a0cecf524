"""A voice's pitch: the median F0 of its voiced frames.

Speaker similarity says how near an output is to its prompt's voice, not in what way it
is off. A model can keep a voice's timbre and speak it an octave low (12 semitones, a
voice from another speaker group), and that is the first thing a listener hears. So the
evaluation also reports how far an output's median F0 is from its prompt's, in semitones,
beside the same figure for the speaker's real recording (people vary their pitch too). It
is measured with librosa's probabilistic YIN, not the tracker the frame stage learns from
(`valle.pitch`), so that a model is not scored by its own teacher.
"""

import math

import numpy as np

from valle.pitch import F0_RANGE

HOP_SECONDS = 0.02
MIN_VOICED_FRAMES = 10  # fewer voiced frames than this (0.2 s) give no pitch
MIN_VOICED_PROBABILITY = 0.1  # pYIN's decoding marks some frames of noise voiced, with probabilities near 0


def median_f0(samples: np.ndarray, sample_rate: int) -> float | None:
    """The median F0 in Hz of the voiced frames of mono `samples` (probabilistic YIN), or None with too few."""
    import librosa

    hop = round(HOP_SECONDS * sample_rate)
    f0, voiced, probability = librosa.pyin(np.asarray(samples, dtype=np.float32), fmin=F0_RANGE[0],
                                           fmax=F0_RANGE[1], sr=sample_rate, frame_length=4 * hop, hop_length=hop)
    voiced &= np.isfinite(f0) & (probability >= MIN_VOICED_PROBABILITY)
    return float(np.median(f0[voiced])) if voiced.sum() >= MIN_VOICED_FRAMES else None


def semitones_off(f0: float | None, reference: float | None) -> float | None:
    """How far `f0` is from `reference`, in semitones (12 an octave, either way); None where either is unknown."""
    return None if f0 is None or reference is None else abs(12 * math.log2(f0 / reference))
