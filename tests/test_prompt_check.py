"""Prompt checks and the picker on speech spoken by espeak-ng, each defect made by the test itself."""

import json

import numpy as np
import pytest
import soundfile as sf

from valle.data.synthetic.voices import Voice, render
from valle.infer import prompt_signal as signal
from valle.infer.prompt_check import CODES, RULES, CheckConfig, check_prompt
from valle.infer.prompt_pick import pick_window, prepare_prompt

RATE = 16000
TEXT = "The quick brown fox jumps over the lazy dog, while six children watch from the garden wall."
ONE = Voice("one", "espeak", "en-us+m3", 35, 50, 165, 1.0, 0.0)
OTHER = Voice("other", "espeak", "en+f4", 80, 70, 150, 0.9, 0.0)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return render(ONE, TEXT, RATE)


def codes_of(samples: np.ndarray, text: str | None = TEXT) -> list[str]:
    return check_prompt(samples, RATE, text).codes


def tones(n: int, level: float) -> np.ndarray:
    """A held major chord of harmonic notes: what music under a voice looks like to the check."""
    t = np.arange(n) / RATE
    return level * sum(np.sin(2 * np.pi * k * f * t) / k for f in (220.0, 277.2, 329.6) for k in (1, 2, 3))


def reverberate(x: np.ndarray, rt60: float, seed: int = 0) -> np.ndarray:
    n = int(rt60 * RATE)
    tail = np.random.default_rng(seed).standard_normal(n) * np.exp(-6.91 * np.arange(n) / (rt60 * RATE))
    tail[0] = 4.0
    y = np.convolve(x, tail)[: len(x) + n // 2]
    return 0.9 * y / np.abs(y).max()


def test_clean_speech_has_no_finding_and_every_check_ran(speech):
    report = check_prompt(speech, RATE, TEXT)
    assert report.ok and report.findings == [] and report.not_checked == {}
    assert 4.0 < report.speech_seconds <= report.seconds and report.measures["phonemes"] >= CheckConfig().min_phonemes
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["ok"] is True and as_json["findings"] == [] and set(as_json["measures"]) == {r.measure for r in RULES}


def test_too_little_speech_even_padded_with_silence(speech):
    padded = np.concatenate([np.zeros(RATE), speech[: int(1.2 * RATE)], np.zeros(3 * RATE)])
    report = check_prompt(padded, RATE, None)
    assert report.codes == ["too_short"] and report.findings[0].value < 1.5 and report.seconds > 5


def test_noise(speech):
    noisy = speech + np.random.default_rng(0).standard_normal(len(speech)) * np.sqrt(np.mean(speech**2))  # 0 dB
    assert "noise" in codes_of(noisy)


def test_clipping(speech):
    assert codes_of(np.clip(speech * 8, -1, 1)) == ["clipping"]


def test_music_under_the_voice(speech):
    report = check_prompt(speech + tones(len(speech), 0.03), RATE, TEXT)
    assert "not_speech" in report.codes and report.measures["two_voice_percent"] is None  # music is not a second voice
    assert "music" in report.not_checked["several_speakers"]


def test_two_speakers_one_after_the_other(speech):
    other = render(OTHER, "Seven silver spoons lay beside the blue bowl on the kitchen table.", RATE)
    report = check_prompt(np.concatenate([speech, np.zeros(RATE // 4), other]), RATE, None)
    assert "several_speakers" in report.codes and "several_speakers" not in codes_of(speech)


def gliding_voice(f0: float, seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """A harmonic series whose pitch glides 15 % either way, as intonation does."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.15 * np.sin(2 * np.pi * 0.8 * t + np.random.default_rng(seed).uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    return sum(np.sin(k * phase) / k for k in range(1, 20))


def test_two_pitches_at_once_are_two_voices_and_noise_or_echo_are_not():
    one, other = gliding_voice(110), gliding_voice(175, seed=1)
    noise = np.random.default_rng(2).standard_normal(len(one))

    def percent(x: np.ndarray) -> float:
        return signal.two_voice_percent(0.3 * x / np.abs(x).max(), np.ones(len(x) // signal.HOP, dtype=bool))

    assert percent(one + other) > 50 and percent(one + 0.5 * other) > 50
    assert percent(one) == percent(one + 0.3 * one.std() * noise) == percent(noise) == 0
    assert percent(reverberate(one, 1.2)) < 1


def test_two_speakers_at_the_same_time(speech):
    other = render(OTHER, "Seven silver spoons lay beside the blue bowl on the kitchen table.", RATE)
    mixed = speech + np.resize(other, len(speech)) * np.sqrt(np.mean(speech**2) / np.mean(other**2))
    report = check_prompt(mixed / np.abs(mixed).max(), RATE, TEXT)
    finding = next(f for f in report.findings if f.code == "several_speakers")
    assert finding.value == report.measures["two_voice_percent"] > 2 * CheckConfig().max_two_voice_percent
    assert "two voices at once" in finding.advice
    assert check_prompt(speech, RATE, TEXT).measures["two_voice_percent"] < CheckConfig().max_two_voice_percent / 2


def test_echo_of_a_large_room(speech):
    assert "reverberant" in codes_of(reverberate(speech, 1.2))


def test_few_distinct_sounds_in_the_transcript():
    words = "No, no, no, no, no, no, no, no, no, no, no, no."
    report = check_prompt(render(ONE, words, RATE), RATE, words)
    assert "low_coverage" in report.codes and report.measures["phonemes"] <= 4


def test_too_quiet(speech):
    assert codes_of(speech * 10 ** (-35 / 20)) == ["too_quiet"]


def test_each_finding_says_value_threshold_and_advice(speech):
    report = check_prompt(np.clip(speech * 8, -1, 1)[: int(1.5 * RATE)], RATE, "no no no")
    assert {"too_short", "clipping", "low_coverage"} <= set(report.codes) <= set(CODES)
    for finding in report.findings:
        rule = next(r for r in RULES if r.code == finding.code and report.measures[r.measure] == finding.value)
        assert finding.value == report.measures[rule.measure] and finding.threshold == getattr(CheckConfig(), rule.limit)
        assert (finding.value < finding.threshold) == rule.below and len(finding.advice) > 40


@pytest.fixture(scope="module")
def long_recording(speech: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Another voice, music, then the main voice clean, then the main voice in noise; where the clean part lies."""
    rng = np.random.default_rng(1)
    other = render(OTHER, "Seven silver spoons lay beside the blue bowl. Nobody knew who had left them there.", RATE)
    more = render(ONE, "Then the bell rang twice, and everyone hurried back inside for supper.", RATE)
    music = tones(3 * RATE, 0.1)
    noisy = more + rng.standard_normal(len(more)) * 0.3 * np.sqrt(np.mean(more**2))
    pause = np.zeros(RATE // 2)
    parts = [other, pause, music, pause, speech, pause, noisy]
    clean_start = sum(map(len, parts[:4])) / RATE
    x = np.concatenate(parts) + rng.standard_normal(sum(map(len, parts))) * 1e-4
    return x.astype(np.float32), (clean_start, clean_start + len(speech) / RATE)


def test_the_picker_takes_the_clean_main_voice(long_recording):
    recording, (start, end) = long_recording
    assert len(recording) / RATE > 15
    pick = pick_window(recording, RATE)
    assert 3.0 <= pick.seconds <= 6.0 and start - 0.15 <= pick.start and pick.end <= end + 0.15
    assert pick.speech_seconds > 2.5 and pick.speaker_similarity is not None  # measured: Resemblyzer is installed
    assert check_prompt(pick.cut(recording, RATE), RATE).ok


def test_short_recordings_are_used_whole_and_long_ones_cut(speech, long_recording, tmp_path):
    sf.write(tmp_path / "short.wav", speech, RATE)
    whole = prepare_prompt(tmp_path / "short.wav", 24000, TEXT, check=True)
    assert whole.pick is None and whole.text == TEXT and whole.report.ok and whole.to_dict()["picked"] is None
    recording, _ = long_recording
    sf.write(tmp_path / "long.wav", recording, RATE)
    cut = prepare_prompt(tmp_path / "long.wav", 24000, "words of the whole recording", check=True)
    assert cut.pick is not None and cut.text is None  # the transcript covered all of it: the window's is recognised
    assert len(cut.samples) / 24000 <= cut.pick.seconds and cut.to_dict()["picked"]["start"] == round(cut.pick.start, 3)
    assert "best" in cut.describe_pick("prompt long.wav", True) and f"{cut.pick.start:.2f}" in cut.describe_pick("x", True)


def test_cli_check_prints_json_and_exits_1_on_findings(speech, tmp_path, capsys):
    from valle.cli import main

    sf.write(tmp_path / "clean.wav", speech, RATE)
    sf.write(tmp_path / "clipped.wav", np.clip(speech * 8, -1, 1), RATE)
    assert main(["prompt", "check", str(tmp_path / "clean.wav"), "--text", TEXT, "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["ok"] is True and clean["findings"] == [] and clean["picked"] is None
    assert main(["prompt", "check", str(tmp_path / "clipped.wav"), "--json"]) == 1
    clipped = json.loads(capsys.readouterr().out)
    assert clipped["ok"] is False and [f["code"] for f in clipped["findings"]] == ["clipping"]
    assert set(clipped["findings"][0]) == {"code", "value", "threshold", "advice"}
    assert "low_coverage" in clipped["not_checked"]  # no transcript given
    assert main(["prompt", "check", str(tmp_path / "clipped.wav")]) == 1
    assert "clipping: clipped:" in capsys.readouterr().out


def test_cli_pick_writes_the_window_and_says_which_seconds(long_recording, tmp_path, capsys):
    from valle.cli import main

    recording, (start, end) = long_recording
    sf.write(tmp_path / "long.wav", recording, RATE)
    assert main(["prompt", "pick", str(tmp_path / "long.wav"), "-o", str(tmp_path / "best.wav")]) == 0
    printed = capsys.readouterr().out
    best, rate = sf.read(tmp_path / "best.wav")
    shown = printed.split(": ")[1].split(" s ")[0]  # "START-END"
    first, last = map(float, shown.split("-"))
    assert rate == RATE and start - 0.15 <= first and last <= end + 0.15 and len(best) / RATE == pytest.approx(last - first, abs=0.02)


def test_the_bundled_prompts_pass_the_check():
    from valle.audio import load_audio
    from valle.infer.bundled import bundled_prompts

    for prompt in bundled_prompts().values():
        report = check_prompt(load_audio(prompt.path, RATE), RATE, prompt.text)
        assert report.ok, f"{prompt.name}: {report.codes} {report.measures}"
        assert "several_speakers" in report.not_checked  # 3 s prompts: too little speech to tell voices apart
