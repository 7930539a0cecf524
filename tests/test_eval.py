"""Scoring helpers: WER normalisation, offline ASR, training-curve plots."""

import json

import pytest

from valle.asr import PocketSphinx, normalize_for_wer, word_error_rate
from valle.data.synthetic.voices import design_voices, render
from valle.errors import ConfigError
from valle.train.plots import plot_metrics


def test_wer_normalisation_ignores_case_punctuation_and_hyphens():
    assert normalize_for_wer("Tarred-and-feathered, he said: \"Don't!\"") == "tarred and feathered he said don't"
    assert word_error_rate(["The cat sat."], ["the cat sat"]) == 0.0
    assert word_error_rate(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(1 / 6)
    assert word_error_rate(["one two"], [""]) == 1.0


def test_pocketsphinx_reads_a_flite_voice():
    voice = next(v for v in design_voices(1, 4, seed=0) if v.base == "rms")  # vocal tract scale 0.994
    text = "Please check each name on the list."
    hypothesis = PocketSphinx().transcribe(render(voice, text, 16000), 16000)
    assert word_error_rate([text], [hypothesis]) <= 0.5, hypothesis


def test_plot_of_consecutive_runs(tmp_path):
    for run, losses in (("a", [3.0, 2.0]), ("b", [1.5, 1.0])):
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.jsonl").write_text(
            "".join(json.dumps({"step": 10 * (i + 1), "loss": x}) + "\n" for i, x in enumerate(losses)))
    out = plot_metrics([tmp_path / "a" / "metrics.jsonl", tmp_path / "b" / "metrics.jsonl"], ["loss"], tmp_path / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="no metric 'mel'.*available: loss, step"):
        plot_metrics([tmp_path / "a" / "metrics.jsonl"], ["mel"], tmp_path / "d.png")
    with pytest.raises(ConfigError, match="does not exist"):
        plot_metrics([tmp_path / "nope.jsonl"], ["loss"], tmp_path / "e.png")
