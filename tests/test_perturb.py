"""`valle data perturb`: new speakers from recorded ones, each with its own pitch and vocal tract."""

import numpy as np
import pytest

from valle.audio import read_audio, write_audio
from valle.cli import main
from valle.data.manifest import Utterance, read_manifest, write_manifest
from valle.data.perturb import MANIFEST, PerturbConfig, design_copies, perturb, perturb_speakers
from valle.errors import ConfigError
from valle.pitch import track_pitch

RATE = 16000


def vowel(f0: float, formant: float, seconds: float = 1.0) -> np.ndarray:
    """Harmonics of `f0` shaped by one formant at `formant` Hz."""
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = np.arange(1, int(7000 / f0)) * f0
    return (0.05 * np.sin(2 * np.pi * harmonics[:, None] * t) / np.hypot(harmonics - formant, 80)[:, None] * 80).sum(0).astype(np.float32)


def median_f0(samples: np.ndarray) -> float:
    track = track_pitch(samples, RATE, 50.0)
    return float(np.median(track[track > 0]))


def spectral_centroid(samples: np.ndarray) -> float:
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    power = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    band = (freqs > 300) & (freqs < 3500)
    return float((freqs[band] * power[band]).sum() / power[band].sum())


@pytest.mark.parametrize(("pitch", "tract"), [(1.2, 1.0), (0.85, 1.0), (1.0, 1.1), (1.15, 0.9)])
def test_a_copy_has_its_own_pitch_and_formants_and_the_tempo_that_its_pitch_gives(pitch, tract):
    source = vowel(120.0, 1000.0)
    copy = perturb(source, RATE, pitch, tract)
    assert len(copy) == pytest.approx(len(source) / pitch, abs=2)
    assert median_f0(copy) / median_f0(source) == pytest.approx(pitch, rel=0.03)
    assert spectral_centroid(copy) / spectral_centroid(source) == pytest.approx(tract, rel=0.05)


def test_copies_are_named_after_their_speaker_and_their_factors_depend_on_name_and_seed_alone():
    config = PerturbConfig(copies=3)
    copies = design_copies(["anna", "ben"], config)
    assert [c.speaker for c in copies] == ["anna+p1", "anna+p2", "anna+p3", "ben+p1", "ben+p2", "ben+p3"]
    assert design_copies(["ben"], config) == copies[3:]  # the other speakers change nothing
    assert design_copies(["ben"], PerturbConfig(copies=3, seed=1)) != copies[3:]
    for c in copies:
        for factor, (low, high) in ((c.pitch, config.pitch), (c.tract, config.tract)):
            assert low <= factor <= high and abs(np.log(factor)) >= config.min_apart - 1e-3  # never the speaker again
    assert len({(c.pitch, c.tract) for c in copies}) == 6


@pytest.mark.parametrize("values", [{"copies": 0}, {"pitch": (1.1, 1.3)}, {"tract": (0.4, 1.2)}, {"min_apart": 0.2}])
def test_bad_perturbation_settings_are_refused(values):
    with pytest.raises(ConfigError, match="a speaker perturbation needs"):
        PerturbConfig(**values)


@pytest.fixture
def recordings(tmp_path):
    rows = []
    for speaker, f0 in (("anna", 210.0), ("ben", 110.0)):
        for i in range(2):
            path = write_audio(tmp_path / "in" / f"{speaker}{i}.wav", vowel(f0, 900.0 + 300 * i, 1.5), RATE)
            rows.append(Utterance(f"{speaker}{i}", path, f"words {i}", speaker, "en-us", 1.5, 8000 if speaker == "ben" else None))
    write_manifest(rows, tmp_path / "in" / "train.jsonl")
    return tmp_path / "in" / "train.jsonl"


def test_every_clip_of_every_speaker_gets_its_copies_and_a_rerun_resumes(recordings, tmp_path, capsys):
    manifest = perturb_speakers(recordings, tmp_path / "out", PerturbConfig(copies=2))
    rows = {r.id: r for r in read_manifest(manifest)}
    copies = {c.speaker: c for c in design_copies(["anna", "ben"], PerturbConfig(copies=2))}
    assert sorted(rows) == ["anna0+p1", "anna0+p2", "anna1+p1", "anna1+p2", "ben0+p1", "ben0+p2", "ben1+p1", "ben1+p2"]
    for row in rows.values():
        copy = copies[row.speaker]
        samples, rate = read_audio(row.audio)
        assert rate == RATE and row.text == f"words {row.id[-4]}" and row.language == "en-us"
        assert row.duration == pytest.approx(1.5 / copy.pitch, abs=1e-3) == pytest.approx(len(samples) / RATE, abs=1e-3)
        assert row.source_rate == (round(8000 * copy.pitch) if row.speaker.startswith("ben") else None)
        assert np.abs(samples).max() <= 0.99
    written = {row.id: row.audio.stat().st_mtime_ns for row in rows.values()}
    (tmp_path / "out" / MANIFEST).unlink()  # as if stopped before the manifest was written

    assert main(["data", "perturb", str(recordings), str(tmp_path / "out"), "--copies", "2"]) in (0, None)
    assert "8 utterances" in capsys.readouterr().out
    again = {r.id: r for r in read_manifest(tmp_path / "out" / MANIFEST)}
    assert again == rows and {i: r.audio.stat().st_mtime_ns for i, r in again.items()} == written  # none made again


def test_a_rerun_with_other_factors_into_the_same_folder_is_refused_and_one_with_more_copies_extends_it(
        recordings, tmp_path, capsys):
    out = tmp_path / "out"
    perturb_speakers(recordings, out, PerturbConfig(copies=1))
    with pytest.raises(ConfigError, match="holds copies made with other settings"):
        perturb_speakers(recordings, out, PerturbConfig(copies=1, seed=1))
    for other in ("--pitch", "0.7", "1.4"), ("--tract", "0.85", "1.18"):
        assert main(["data", "perturb", str(recordings), str(out), "--copies", "1", *other]) not in (0, None)
        assert "give another output folder" in capsys.readouterr().err
    first = {r.id: r.audio.stat().st_mtime_ns for r in read_manifest(out / MANIFEST)}
    assert main(["data", "perturb", str(recordings), str(out), "--copies", "2"]) in (0, None)
    rows = {r.id: r for r in read_manifest(out / MANIFEST)}
    assert len(rows) == 8 and all(rows[i].audio.stat().st_mtime_ns == t for i, t in first.items())


def test_the_command_line_passes_its_ranges_on(recordings, tmp_path):
    wide = PerturbConfig(copies=1, pitch=(0.7, 1.4), tract=(0.85, 1.18))
    pitches = {c.speaker: c.pitch for c in design_copies(["anna", "ben"], wide)}
    assert pitches != {c.speaker: c.pitch for c in design_copies(["anna", "ben"], PerturbConfig(copies=1))}
    assert main(["data", "perturb", str(recordings), str(tmp_path / "out"), "--copies", "1",
                 "--pitch", "0.7", "1.4", "--tract", "0.85", "1.18"]) in (0, None)
    for row in read_manifest(tmp_path / "out" / MANIFEST):
        assert row.duration == pytest.approx(1.5 / pitches[row.speaker], abs=1e-3)
