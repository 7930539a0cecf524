"""Pitch tracks: the F0 of each codec frame of a recording, and of every frame of a tokenised corpus."""

import numpy as np
import pytest

from valle.pitch import track_pitch

RATE, FRAME_RATE = 16000, 50.0


def _buzz(f0: np.ndarray) -> np.ndarray:
    """A voice's harmonics following the F0 contour `f0` (one value per sample), with a little noise."""
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    return (0.2 * sum(np.sin(h * phase) / h for h in range(1, 8))
            + 0.005 * np.random.default_rng(0).normal(size=len(f0))).astype(np.float32)


@pytest.mark.parametrize("f0", [70.0, 163.0, 419.0])
def test_a_steady_voice_is_tracked_in_every_frame_within_a_fifth_of_a_semitone(f0):
    track = track_pitch(_buzz(np.full(RATE, f0)), RATE, FRAME_RATE)
    assert len(track) == 50 and (track[2:-2] > 0).all()
    assert np.abs(12 * np.log2(track[2:-2] / f0)).max() < 0.2


def test_a_gliding_voice_is_followed_frame_by_frame():
    contour = np.linspace(100.0, 300.0, 2 * RATE)  # an octave and a half up in 2 s
    track = track_pitch(_buzz(contour), RATE, FRAME_RATE)
    centres = contour[(np.arange(100) * 320 + 160)]
    assert np.abs(12 * np.log2(track[2:-2] / centres[2:-2])).max() < 0.5


def test_noise_silence_and_pauses_are_unvoiced():
    assert (track_pitch(np.random.default_rng(1).normal(0, 0.1, RATE).astype(np.float32), RATE, FRAME_RATE) > 0).mean() < 0.1
    assert (track_pitch(np.zeros(RATE, dtype=np.float32), RATE, FRAME_RATE) == 0).all()
    voice = _buzz(np.full(RATE, 150.0))
    voice[RATE // 2:] *= 1e-4  # its second half a pause, far below the voice
    track = track_pitch(voice, RATE, FRAME_RATE)
    assert (track[:23] > 0).all() and (track[27:] == 0).all()


def test_a_track_has_one_value_per_codec_frame():
    for samples in (1, 319, 320, 321, 16000, 16001):  # the frames that cover them, as tokenisation counts them
        assert len(track_pitch(np.zeros(samples, dtype=np.float32), RATE, FRAME_RATE)) == max(1, -(-samples // 320))
