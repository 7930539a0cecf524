"""Watermark: inaudible, found after resampling and cropping, silent on clean audio and other keys."""

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import speechlike

from valle import watermark
from valle.audio import read_comment, write_audio
from valle.cli import main
from valle.data.synthetic.voices import design_voices, render
from valle.errors import AudioError, ConfigError

SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


@pytest.fixture(scope="module")
def voices() -> dict[str, tuple[np.ndarray, int]]:
    """One espeak and one flite voice of the synthetic corpus, at 16 and 24 kHz."""
    espeak, flite = design_voices(1, 1, seed=3)
    return {"espeak16": (render(espeak, SENTENCE, 16000), 16000), "flite24": (render(flite, SENTENCE, 24000), 24000)}


def snr_db(clean: np.ndarray, marked: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((marked - clean).astype(np.float64) ** 2)))


def pcm16(samples: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(samples, -1, 1) * 32767) / 32767).astype(np.float32)


@pytest.mark.parametrize("rate", [16000, 24000])
def test_round_trip_on_speechlike_audio(rate):
    clean = speechlike(3.0, rate, seed=rate)
    marked = watermark.embed(clean, rate)
    assert marked.shape == clean.shape and marked.dtype == np.float32
    assert snr_db(clean, marked) >= 30
    found = watermark.detect(pcm16(marked), rate)
    assert found.marked and found.p_value < 1e-10 and found.score > 8
    assert not watermark.detect(clean, rate).marked


@pytest.mark.parametrize("name", ["espeak16", "flite24"])
def test_round_trip_on_synthetic_voices(voices, name):
    clean, rate = voices[name]
    marked = watermark.embed(clean, rate)
    assert snr_db(clean, marked) >= 30
    assert watermark.detect(pcm16(marked), rate).log10_p < -20
    assert watermark.detect(clean, rate).p_value > 1e-3


def test_other_key_does_not_detect_and_keys_are_int_or_string(voices):
    clean, rate = voices["espeak16"]
    marked = watermark.embed(clean, rate, key="my secret")
    assert watermark.detect(marked, rate, key="my secret").marked
    for other in (watermark.DEFAULT_KEY, "my secret ", 12345):
        assert watermark.detect(marked, rate, key=other).p_value > 1e-3
    assert watermark.detect(watermark.embed(clean, rate, key=7), rate, key="7").marked  # the key's text is what counts
    with pytest.raises(ConfigError, match="int or a string"):
        watermark.embed(clean, rate, key=1.5)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_survives_resampling_and_a_one_second_crop(voices, rate):
    clean, source_rate = voices["espeak16"]
    marked = watermark.embed(clean, source_rate)
    there_and_back = soxr.resample(soxr.resample(marked, source_rate, rate), rate, source_rate)
    assert watermark.detect(there_and_back, source_rate).marked
    start = np.random.default_rng(rate).integers(0, len(marked) - rate)
    excerpt = soxr.resample(marked, source_rate, rate)[start : start + rate]  # 1 s at the new rate
    assert watermark.detect(excerpt, rate).marked


def test_excerpt_spliced_into_clean_speech_is_found_where_it_is(voices):
    clean, rate = voices["espeak16"]
    marked = watermark.embed(clean[rate : 3 * rate], rate)
    before, after = speechlike(6.0, rate, seed=1), speechlike(5.0, rate, seed=2)
    found = watermark.detect(np.concatenate([before, marked, after]), rate)
    assert found.marked
    start, end = found.span
    assert start < 8.0 and end > 6.0  # the best block overlaps the marked stretch (6-8 s)


def test_gain_and_stereo_do_not_matter(voices):
    clean, rate = voices["flite24"]
    stereo = np.stack([clean, 0.5 * clean], axis=1)
    marked = watermark.embed(stereo, rate)
    assert marked.shape == stereo.shape
    assert watermark.detect(0.5 * marked, rate).marked and watermark.detect(2 * marked[:, 1], rate).marked


def test_long_files_are_processed_in_pieces_with_the_same_result(voices, monkeypatch):
    clean, rate = voices["espeak16"]
    whole_mark, whole_found = watermark.embed(clean, rate), watermark.detect(clean, rate)
    monkeypatch.setattr(watermark, "CHUNK", 3 * watermark.PERIOD)
    assert len(clean) > 2 * watermark.CHUNK
    np.testing.assert_allclose(watermark.embed(clean, rate), whole_mark, atol=1e-7)
    assert watermark.detect(clean, rate).score == pytest.approx(whole_found.score, abs=1e-9)


def test_clean_p_values_are_roughly_uniform():
    """Over 40 unmarked signals (speech-like, white and brown noise) the p-values spread evenly over (0, 1)."""
    rng = np.random.default_rng(0)
    p_values = []
    for i in range(40):
        kind = i % 3
        if kind == 0:
            x = speechlike(1.5, 16000, seed=100 + i)
        elif kind == 1:
            x = 0.1 * rng.standard_normal(24000)
        else:
            x = np.cumsum(rng.standard_normal(24000))
            x = 0.1 * (x - x.mean()) / x.std()
        p_values.append(watermark.detect(x.astype(np.float32), 16000).p_value)
    p_values = np.sort(p_values)
    ks = np.max(np.abs(p_values - (np.arange(1, 41) - 0.5) / 40)) + 0.5 / 40
    assert ks < 0.26, p_values  # Kolmogorov-Smirnov, 1 % level for n = 40
    assert p_values.min() > 1e-3


def test_silence_is_not_marked_and_short_or_broken_audio_is_refused():
    silence = np.zeros(16000, np.float32)
    assert np.all(watermark.embed(silence, 16000) == 0)
    speech_then_hush = np.concatenate([speechlike(2.0, 16000), 1e-3 * speechlike(1.0, 16000, seed=1)])  # -60 dB
    mark = watermark.embed(speech_then_hush, 16000) - speech_then_hush
    assert np.all(mark[2 * 16000 + 1024 :] == 0) and np.any(mark[:16000] != 0)
    assert watermark.detect(silence, 16000).p_value == 1.0
    with pytest.raises(AudioError, match=r"0\.30 s long; the watermark needs at least 0\.5 s"):
        watermark.detect(np.ones(4800, np.float32) * 0.1, 16000)
    with pytest.raises(AudioError, match="NaN"):
        watermark.detect(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(AudioError, match="at least 8000 Hz"):
        watermark.embed(np.zeros(8000, np.float32), 4000)


def test_metadata_comment_round_trip(tmp_path):
    samples = speechlike(1.0, 16000)
    tagged = write_audio(tmp_path / "tagged.wav", samples, 16000, comment=watermark.SYNTHETIC_COMMENT)
    plain = write_audio(tmp_path / "plain.wav", samples, 16000)
    assert read_comment(tagged) == "synthetic speech generated by valle"
    assert b"LIST" in tagged.read_bytes() and b"ICMT" in tagged.read_bytes()
    assert read_comment(plain) == "" and b"LIST" not in plain.read_bytes()
    assert np.array_equal(sf.read(tagged)[0], sf.read(plain)[0])


def test_cli_embed_and_detect(write_wav, tmp_path, capsys):
    source = write_wav("voice.wav", seconds=2.0)
    target = tmp_path / "marked.wav"
    assert main(["watermark", "embed", str(source), str(target), "--key", "k1"]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert read_comment(target) == watermark.SYNTHETIC_COMMENT

    assert main(["watermark", "detect", str(target), str(source), "--key", "k1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(str(target)) and lines[0].endswith("watermarked") and "p-value" in lines[0]
    assert lines[1].startswith(str(source)) and lines[1].endswith("no watermark found")

    assert main(["watermark", "detect", str(target)]) == 0  # the default key is another key
    assert capsys.readouterr().out.rstrip().endswith("no watermark found")


def test_cli_defaults_are_the_library_defaults():
    from valle.cli import _build_parser

    args = _build_parser().parse_args(["watermark", "detect", "some.wav"])
    assert args.key == watermark.DEFAULT_KEY and args.threshold == watermark.P_THRESHOLD


def test_cli_errors_are_one_line(write_wav, tmp_path, capsys):
    short = write_wav("short.wav", seconds=0.2)
    assert main(["watermark", "detect", str(short)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: audio file {short} is 0.20 s long") and "at least 0.5 s" in err and err.count("\n") == 1

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    good = write_wav("good.wav", seconds=1.0)
    assert main(["watermark", "detect", str(good), str(broken)]) == 2
    captured = capsys.readouterr()
    assert f"{broken}  error: cannot read audio file" in captured.out
    assert captured.err == "error: 1 of 2 files could not be checked (see above)\n"
    assert main(["watermark", "embed", str(tmp_path / "missing.wav"), str(tmp_path / "out.wav")]) == 2
    assert "does not exist" in capsys.readouterr().err
