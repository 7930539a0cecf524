"""The pitch of a voice, and how far an output's is from its prompt's."""

import numpy as np
import pytest

from valle.eval.pitch import median_f0, semitones_off

RATE = 16000


def _voice(f0: float, seconds: float = 2.0) -> np.ndarray:
    """A buzz with a voice's harmonics at `f0`, in syllables with pauses, and a little noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))
    syllables = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(float)
    return (0.2 * buzz * syllables + 0.01 * np.random.default_rng(0).normal(size=len(t))).astype(np.float32)


@pytest.mark.parametrize("f0", [82.0, 163.0, 240.0])
def test_the_median_pitch_of_a_voice_is_found_within_a_semitone(f0):
    assert semitones_off(median_f0(_voice(f0), RATE), f0) < 1.0


def test_noise_and_silence_have_no_pitch():
    assert median_f0(np.random.default_rng(1).normal(0, 0.1, RATE * 2).astype(np.float32), RATE) is None
    assert median_f0(np.zeros(RATE, dtype=np.float32), RATE) is None


def test_an_octave_is_twelve_semitones_either_way_and_unknown_stays_unknown():
    assert semitones_off(81.5, 163.0) == pytest.approx(12.0) and semitones_off(326.0, 163.0) == pytest.approx(12.0)
    assert semitones_off(None, 163.0) is None and semitones_off(163.0, None) is None
