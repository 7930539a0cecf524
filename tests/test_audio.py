"""Audio I/O: formats, channel mixing, resampling, trimming, levels, and every bad input."""

import warnings

import numpy as np
import pytest
import soundfile as sf
from conftest import speechlike

from valle.audio import (
    ClippingWarning,
    audio_duration,
    load_audio,
    load_prompt,
    normalize_loudness,
    trim_silence,
    write_audio,
)
from valle.errors import AudioError


@pytest.mark.parametrize(("name", "options"), [
    ("a.wav", {}),
    ("a.flac", {}),
    ("a.ogg", {"format": "OGG", "subtype": "VORBIS"}),
    ("a.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}),
])
def test_reads_common_formats(write_wav, name, options):
    path = write_wav(name, seconds=2.0, **options)
    samples = load_audio(path, 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / 16000 - 2.0) < 0.1  # mp3 pads a frame or two


def test_stereo_is_mixed_to_mono(write_wav):
    left = speechlike(1.5, 16000)
    path = write_wav("stereo.wav", np.stack([left, -left * 0.5], axis=1))
    np.testing.assert_allclose(load_audio(path, 16000), left * 0.25, atol=1e-4)


def test_resamples_44k1_to_16k_and_keeps_pitch(write_wav):
    t = np.arange(44100 * 2) / 44100
    path = write_wav("tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate=44100)
    samples = load_audio(path, 16000)
    assert len(samples) == 32000
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 440) < 1


def test_duration_from_header(write_wav):
    assert audio_duration(write_wav("d.flac", seconds=1.25)) == pytest.approx(1.25, abs=1e-3)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav", 16000)


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x01garbage" + bytes(range(256)))
    with pytest.raises(AudioError, match=r"cannot read audio file .*corrupt\.wav.*supported: wav, flac"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match="cannot read"):
        audio_duration(path)


def test_empty_file(write_wav):
    with pytest.raises(AudioError, match="empty"):
        load_audio(write_wav("empty.wav", np.zeros(0, np.float32)), 16000)


def test_nan_samples(write_wav):
    samples = speechlike(1.0, 16000)
    samples[100] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(write_wav("nan.wav", samples, subtype="FLOAT"), 16000)


def test_silent_file(write_wav):
    with pytest.raises(AudioError, match="silent"):
        load_audio(write_wav("silent.wav", np.zeros(16000, np.float32)), 16000)


def test_clipped_input_warns(write_wav):
    samples = np.clip(speechlike(2.0, 16000) * 20, -1, 1)
    with pytest.warns(ClippingWarning, match="clipped"):
        load_audio(write_wav("clipped.wav", samples), 16000)


def test_clean_input_does_not_warn(write_wav):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(write_wav("clean.wav"), 16000)


def test_trim_silence_keeps_speech_and_a_margin():
    speech = speechlike(1.0, 16000)
    padded = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(8000, np.float32)])
    trimmed = trim_silence(padded, 16000, keep_ms=100)
    assert 1.0 <= len(trimmed) / 16000 <= 1.0 + 0.2 + 0.02


def test_loudness_and_peak_normalisation():
    quiet = speechlike(1.0, 16000) * 0.01
    level = normalize_loudness(quiet, target_dbfs=-20.0)
    assert 10 * np.log10(np.mean(level.astype(np.float64) ** 2)) == pytest.approx(-20.0, abs=0.05)
    spiky = quiet.copy()
    spiky[10] = 5.0
    assert np.abs(normalize_loudness(spiky, target_dbfs=-3.0, peak=0.9)).max() == pytest.approx(0.9, abs=1e-6)


def test_prompt_too_short_after_trimming(write_wav):
    samples = np.concatenate([np.zeros(32000, np.float32), speechlike(0.5, 16000), np.zeros(32000, np.float32)])
    with pytest.raises(AudioError, match=r"0\.\d+ s of speech.*at least 1 s"):
        load_prompt(write_wav("short.wav", samples), 16000)


def test_prompt_too_long(write_wav):
    with pytest.raises(AudioError, match=r"limit is 5 s"):
        load_prompt(write_wav("long.wav", seconds=8.0), 16000, max_seconds=5.0)


def test_prompt_from_stereo_44k1_mp3(write_wav):
    left = speechlike(3.0, 44100)
    path = write_wav("p.mp3", np.stack([left, left], axis=1), sample_rate=44100, format="MP3", subtype="MPEG_LAYER_III")
    prompt = load_prompt(path, 24000)
    assert prompt.ndim == 1 and 2.8 < len(prompt) / 24000 < 3.3


def test_write_audio_round_trip(tmp_path):
    samples = speechlike(1.0, 16000)
    path = write_audio(tmp_path / "sub" / "x.wav", samples, 16000)
    np.testing.assert_allclose(sf.read(path, dtype="float32")[0], samples, atol=1 / 32768 * 1.01)
    assert not list(path.parent.glob(".*.tmp"))
