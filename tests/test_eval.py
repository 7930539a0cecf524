"""`valle eval`: the paper's two settings planned from a manifest, scored beside the real recordings."""

import json

import numpy as np
import pytest
from conftest import speechlike

from valle.data.manifest import Utterance, write_manifest
from valle.errors import ConfigError
from valle.eval.protocol import EvalConfig, plan


@pytest.fixture
def manifest(tmp_path, write_wav):
    rows = []
    for s in range(2):
        rows.append(Utterance(f"s{s}_p", write_wav(f"s{s}/p.wav", speechlike(3.1, 16000, seed=s)), "a short prompt here",
                              f"s{s}", duration=3.1))
        for u in range(3):
            seconds = 4.5 + u if u < 2 else 12.0  # the last one is longer than the paper's 10 s
            rows.append(Utterance(f"s{s}_{u}", write_wav(f"s{s}/{u}.wav", speechlike(seconds, 16000, seed=10 * s + u)),
                                  f"utterance number {u} of speaker {s}", f"s{s}", duration=seconds))
    write_manifest(rows, tmp_path / "test.jsonl")
    return tmp_path / "test.jsonl"


def test_plan_follows_the_paper(manifest):
    from valle.data.manifest import read_manifest

    items = plan(read_manifest(manifest), EvalConfig())
    cross = [i for i in items if i.mode == "cross-sentence"]
    cont = [i for i in items if i.mode == "continuation"]
    assert [i.target.id for i in cross] == ["s0_0", "s1_0", "s0_1", "s1_1"]  # 4-10 s only, speakers in turn
    assert all(i.prompt_audio.name == "p.wav" and i.prompt_text == "a short prompt here" for i in cross)
    assert [i.target.id for i in cont] == [i.target.id for i in cross]
    assert all(i.prompt_audio == i.target.audio and i.prompt_text is None and i.prompt_seconds == 3.0 for i in cont)
    assert len(plan(read_manifest(manifest), EvalConfig(modes=("continuation",), n=3))) == 3
    with pytest.raises(ConfigError, match="evaluation modes must be among"):
        EvalConfig(modes=("zero",))
    with pytest.raises(ConfigError, match="no speaker has a test utterance of 8-9 s besides its prompt"):
        plan(read_manifest(manifest), EvalConfig(min_seconds=8.0, max_seconds=9.0))


def test_eval_command_writes_table_json_and_figure_with_ground_truth(model_dir, manifest, tmp_path, capsys):
    from valle.cli import main

    assert main(["eval", "--model", str(model_dir), "--manifest", str(manifest), "--out", str(tmp_path / "ev"),
                 "--n", "2"]) == 0
    printed = capsys.readouterr().out
    assert "| cross-sentence | ground truth | 2 |" in printed and "| continuation | model | 2 |" in printed
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert [(r["mode"], r["system"]) for r in report["summary"]] == [
        (mode, system) for mode in ("cross-sentence", "continuation") for system in ("ground truth", "codec resynthesis", "model")]
    truth, resynthesis = report["summary"][:2]
    assert truth["rtf"] is None and truth["dnsmos"] is not None and 0 <= truth["identification"] <= 1
    assert resynthesis["rtf"] is None and -1 <= resynthesis["sim"] <= 1 and 0 <= resynthesis["identification"] <= 1
    assert 1 - truth["wer"] <= truth["heard"] <= 1  # words heard miss only substitutions and deletions
    assert truth["pitch_off"] < 1.0  # the recordings' pitch moves around 120 Hz like their prompts'
    assert all(100 < r["prompt_f0"] < 140 for r in report["utterances"])
    assert len(report["utterances"]) == 4 and report["info"]["asr"] == "faster-whisper:tiny.en"  # the default judge
    assert "WER by faster-whisper:tiny.en, SIM by resemblyzer" in (tmp_path / "ev" / "eval.md").read_text()
    assert "pitch off the prompt's (semitones)" in printed and "| words heard |" in printed
    assert [(v["speaker"], v["n"]) for v in report["speakers"]] == [("s0", 2), ("s1", 2)]  # both settings together
    assert all(0 <= v["wer_truth"] and -1 <= v["sim_output"] <= 1 for v in report["speakers"])
    assert "| s1 | en-us | 2 |" in (tmp_path / "ev" / "eval.md").read_text()
    for record in report["utterances"]:
        assert record["truth"]["sim"] > 0.5  # the same signal family as its prompt
    assert (tmp_path / "ev" / "eval.png").stat().st_size > 10_000


def test_eval_fails_before_synthesis_when_a_backend_is_missing(model_dir, manifest, tmp_path, capsys):
    from valle.cli import main

    assert main(["eval", "--model", str(model_dir), "--manifest", str(manifest), "--asr", str(tmp_path / "whisper")]) == 2
    assert "is no speech recogniser" in capsys.readouterr().err


def test_each_utterance_is_spoken_in_its_own_language(polyglot_dir, tmp_path, write_wav, monkeypatch):
    """A multilingual manifest: the text in the target's language, the prompt's words in the prompt's."""
    from valle.data.manifest import read_manifest
    from valle.eval.evaluate import Scorers, evaluate
    from valle.infer import VallE
    from valle.speaker import SpeakerEncoder

    class Deaf:  # the words are not what this test checks
        name = "none"

        def transcribe(self, samples, rate):
            return ""

    rows = [Utterance("p", write_wav("p.wav", speechlike(3.0, 16000)), "hello there friends", "s0", language="en-us", duration=3.0),
            Utterance("t", write_wav("t.wav", speechlike(5.0, 16000, seed=1)), "hola a todos", "s0", language="es", duration=5.0)]
    write_manifest(rows, tmp_path / "m.jsonl")
    [item] = plan(read_manifest(tmp_path / "m.jsonl"), EvalConfig(modes=("cross-sentence",)))
    assert (item.target.language, item.prompt_language) == ("es", "en-us")
    valle, asked = VallE.from_pretrained(polyglot_dir), []
    speak = valle.synthesize
    monkeypatch.setattr(valle, "synthesize", lambda *args, **options: asked.append(options) or speak(*args, **options))
    evaluate(valle, [item], Scorers(Deaf(), SpeakerEncoder()))
    assert (asked[0]["language"], asked[0]["prompt_language"]) == ("es", "en-us")


def test_the_cross_lingual_setting_speaks_another_languages_text_in_the_prompts_voice(polyglot_dir, tmp_path, write_wav,
                                                                                     capsys):
    """VALL-E X: each speaker's prompt says the text of a test utterance in another language; the speaker's own
    recording stays the ground truth of the voice."""
    from valle.cli import main
    from valle.data.manifest import read_manifest

    rows = []
    for s, (language, texts) in enumerate([("en-us", ["hello there my friends", "good morning to you all"]),
                                           ("es", ["hola a todos mis amigos", "buenos días a todos"])]):
        rows.append(Utterance(f"s{s}_p", write_wav(f"s{s}/p.wav", speechlike(3.1, 16000, seed=s)), texts[0], f"s{s}",
                              language=language, duration=3.1))
        rows.append(Utterance(f"s{s}_0", write_wav(f"s{s}/0.wav", speechlike(4.5, 16000, seed=10 + s)), texts[1], f"s{s}",
                              language=language, duration=4.5))
    write_manifest(rows, tmp_path / "m.jsonl")
    items = plan(read_manifest(tmp_path / "m.jsonl"), EvalConfig(modes=("cross-sentence", "cross-lingual")))
    crossed = [i for i in items if i.mode == "cross-lingual"]
    assert [(i.target.id, i.spoken.id, i.prompt_language) for i in crossed] == [("s0_0", "s1_0", "en-us"), ("s1_0", "s0_0", "es")]
    assert all(i.prompt_audio.name == "p.wav" for i in crossed)
    assert main(["eval", "--model", str(polyglot_dir), "--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "ev"),
                 "--modes", "cross-sentence", "cross-lingual", "--no-mos"]) == 0
    assert "| cross-lingual | model | 2 |" in capsys.readouterr().out
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    record = next(r for r in report["utterances"] if r["mode"] == "cross-lingual" and r["speaker"] == "s0")
    assert (record["text"], record["language"], record["truth_text"]) == ("buenos días a todos", "es", "good morning to you all")
    english_only = [r for r in rows if r.language == "en-us"]
    write_manifest(english_only, tmp_path / "en.jsonl")
    with pytest.raises(ConfigError, match="needs test utterances in two languages at least; all are in en-us"):
        plan(english_only, EvalConfig(modes=("cross-lingual",)))


def test_the_figure_draws_each_outputs_pitch_against_its_prompts_found_or_not(tmp_path):
    import matplotlib.image

    from valle.eval.report import plot_scores

    def record(prompt_f0, output_f0):
        return {"mode": "cross-sentence", "prompt_f0": prompt_f0, "truth": {"sim": 0.9}, "output": {"sim": 0.7, "f0": output_f0}}

    pitched = plot_scores([record(200.0, 100.0), record(120.0, 121.0), record(419.0, None)], tmp_path / "pitched.png")
    unpitched = plot_scores([record(None, None), record(None, None)], tmp_path / "unpitched.png")
    width = {name: matplotlib.image.imread(path).shape[1] for name, path in (("pitched", pitched), ("unpitched", unpitched))}
    assert width["pitched"] > 1.3 * width["unpitched"]  # a third panel, for the pitch, only where prompts have one


def test_each_voice_gets_its_own_row_with_the_judge_s_reading_of_its_recordings():
    from valle.eval.evaluate import by_speaker
    from valle.eval.report import speaker_table

    def record(speaker, language, truth_heard, output_heard, sim):
        text = "one two three four"
        return {"speaker": speaker, "language": language,
                **{system: {"text": text, "hypothesis": heard, "sim": sim}
                   for system, heard in (("truth", truth_heard), ("resynthesis", truth_heard), ("output", output_heard))}}

    records = [record("clear", "en-us", "one two three four", "one two three four", 0.8),
               record("mumbled", "en-us", "one", "one two", 0.6),
               record("clear", "en-us", "one two three four", "one two three", 0.6),
               record("french", "fr-fr", "un deux", "un", 0.7)]
    rows = {r["speaker"]: r for r in by_speaker(records)}
    assert list(rows) == ["clear", "mumbled", "french"]  # in the order they first come
    assert rows["clear"]["n"] == 2 and rows["clear"]["wer_truth"] == 0 and rows["clear"]["wer_output"] == 1 / 8
    assert rows["mumbled"]["wer_truth"] == 0.75 and rows["mumbled"]["wer_output"] == 0.5
    assert rows["clear"]["sim_output"] == pytest.approx(0.7)
    table = speaker_table(list(rows.values()), judged={"en-us"})
    assert "| mumbled | en-us | 1 | 75 % | 75 % | 50 % | 0.600 | 0.600 | 0.600 |" in table
    assert "| french | fr-fr | 1 | n/a | n/a | n/a |" in table  # an English judge's WER of French is not shown


def test_two_evaluations_are_compared_utterance_by_utterance_with_an_interval_that_tells_chance_from_a_gain():
    from valle.eval.compare import compare, comparison_table
    from valle.eval.evaluate import corpus_wer

    def records(heard: list[str], sims: list[float], languages: list[str] | None = None) -> list[dict]:
        return [{"mode": "cross-sentence", "id": f"u{i}", "language": (languages or ["en-us"] * len(heard))[i],
                 "output": {"text": "one two three four", "hypothesis": h, "sim": s, "identified": s > 0.5}}
                for i, (h, s) in enumerate(zip(heard, sims))]

    rng = np.random.default_rng(0)
    sims = list(rng.uniform(0.4, 0.9, 40))
    worse = records(["one two"] * 40, sims)
    better = records(["one two three four"] * 20 + ["one two three"] * 20, [s + 0.05 for s in sims])
    n, (wer, sim, identified) = compare(worse, better)
    assert n == 40 and wer.first == corpus_wer([r["output"] for r in worse]) == 0.5
    assert wer.second == corpus_wer([r["output"] for r in better]) == 0.125
    assert wer.high < 0 and sim.low == pytest.approx(0.05) == sim.high  # every utterance better: no interval holds 0
    assert identified.first <= identified.second
    n, same = compare(worse, worse)
    assert all(d.low == d.high == 0 for d in same)
    mixed = records(["one two"] * 20 + ["one two three four"] * 20, sims)  # half better, half worse than `noisy`
    noisy = records(["one two three four"] * 20 + ["one two"] * 20, sims)
    n, (wer, *_) = compare(mixed, noisy)
    assert wer.second - wer.first == 0 and wer.low < 0 < wer.high  # chance: the interval holds zero
    assert compare(worse[:10], better)[0] == 10  # only the utterances both scored
    n, (wer, *_) = compare(records(["un"] * 2 + ["one"] * 2, [0.5] * 4, ["fr-fr"] * 2 + ["en-us"] * 2),
                           records(["deux"] * 2 + ["one two three four"] * 2, [0.5] * 4, ["fr-fr"] * 2 + ["en-us"] * 2))
    assert (wer.first, wer.second) == (0.75, 0)  # WER of the English utterances only
    assert "| WER | 75.0 % | 0.0 % | -75.0 % |" in comparison_table(n, [wer])
    with pytest.raises(ConfigError, match="share no utterance"):
        compare(worse, [{**r, "id": "other" + r["id"]} for r in better])
