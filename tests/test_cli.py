"""The `valle` command: sub-commands reach the library, errors are one line and exit 2."""

import json
import subprocess
import sys

import pytest

from valle.cli import main
from valle.errors import ConfigError


def test_help_lists_the_command_groups(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for group in ("text", "data"):
        assert group in out


def test_synth_corpus_reports_where_it_wrote(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["data", "synth-corpus", str(out), "--hours", "0.005", "--seed", "1", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote the synthetic corpus to {out}" in printed
    assert str(out / "test.jsonl") in printed and (out / "test.jsonl").is_file()


def test_synth_corpus_takes_the_number_of_speakers(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["data", "synth-corpus", str(out), "--hours", "0.005", "--speakers", "16", "--workers", "1"]) == 0
    speakers = {json.loads(line)["speaker"] for split in ("train", "valid", "test") for line in open(out / f"{split}.jsonl")}
    assert len(speakers) == 16
    assert main(["data", "synth-corpus", str(tmp_path / "few"), "--speakers", "5"]) == 2
    assert "at least 12 speakers" in capsys.readouterr().err


def test_bad_value_is_one_line_error_without_traceback(tmp_path, capsys):
    assert main(["data", "synth-corpus", str(tmp_path / "x"), "--hours", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --hours must be in (0, 1000]") and "Traceback" not in err and err.count("\n") == 1


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "valle.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("valle ")


def test_every_option_with_a_default_shows_it_in_its_help():
    import argparse

    from valle.cli import _build_parser

    def parsers(parser: argparse.ArgumentParser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    checked = 0
    for parser in parsers(_build_parser()):
        for action in parser._actions:
            if action.option_strings and action.default not in (None, argparse.SUPPRESS) and action.default is not False:
                assert "default" in (action.help or ""), f"{parser.prog} {action.option_strings[0]} hides its default"
                checked += 1
        parser.format_help()  # every help renders
    assert checked > 40


def test_an_unknown_prompt_name_suggests_close_names_and_the_list(capsys):
    assert main(["synthesize", "Hello.", "--prompt", "fl999"]) == 2
    err = capsys.readouterr().err
    assert "no audio file or bundled prompt named 'fl999'" in err and "did you mean fl001 or fl000?" in err and "`valle prompts`" in err
    assert main(["synthesize", "Hello.", "--prompt", "me.wav"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_text_over_the_limit_is_refused_before_any_work(capsys):
    assert main(["synthesize", "Words. " * 3000, "--prompt", "fl001"]) == 2
    err = capsys.readouterr().err
    assert "the text has 21000 characters; one command speaks at most 5000 (--max-chars)" in err and "--batch" in err


def test_long_text_shows_a_progress_bar(model_dir, tmp_path, capsys, monkeypatch):
    import numpy as np

    from valle.infer.pipeline import VallE

    monkeypatch.setattr(VallE, "speak", lambda self, jobs, batch_size=8: [np.zeros(1600, np.float32)] * len(jobs))
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    assert main(["synthesize", text, "--prompt", "fl001", "--model", str(model_dir), "--batch-size", "4",
                 "-o", str(tmp_path / "out.wav")]) == 0
    err = capsys.readouterr().err
    assert "20/20" in err and "sentences" in err


def test_a_long_prompt_is_cut_to_its_best_window_and_says_so(model_dir, tmp_path, capsys, monkeypatch):
    import numpy as np
    import soundfile as sf

    from valle.infer.bundled import bundled_prompts
    from valle.infer.pipeline import VallE

    heard = []
    monkeypatch.setattr(VallE, "_transcribe", lambda self, samples: heard.append(len(samples)) or "recognised words")
    prompts = [sf.read(p.path)[0] for p in bundled_prompts().values() if p.speaker.startswith("fl001")]
    long = np.concatenate([np.concatenate([prompts[0], np.zeros(8000)])] * 4)
    sf.write(tmp_path / "long.wav", long, 16000)
    assert main(["synthesize", "Hello.", "--prompt", str(tmp_path / "long.wav"), "--prompt-text", "all of it",
                 "--model", str(model_dir), "-o", str(tmp_path / "out.wav")]) == 0
    err = capsys.readouterr().err
    assert f"prompt {tmp_path / 'long.wav'} is {len(long) / 16000:.1f} s long: prompting with its best" in err
    assert "recognised" in err and heard and heard[0] <= 6.0 * 16000


def test_a_model_keeps_its_sampling_and_options_override_it(model_dir, tmp_path, monkeypatch):
    """`valle export --temperature ...` saves the sampling chosen for a model; synthesis uses it unless told otherwise."""
    from valle.cli import _build_parser, _sampling
    from valle.infer import VallE
    from valle.model.sampling import SamplingConfig

    assert VallE.from_pretrained(model_dir).sampling == SamplingConfig()
    assert main(["export", str(model_dir / "ar"), str(model_dir / "nar"), str(tmp_path / "cool"), "--temperature", "0.5",
                 "--upper-temperature", "0"]) == 0
    cool = VallE.from_pretrained(tmp_path / "cool")
    assert cool.sampling == SamplingConfig(temperature=0.5, upper_temperature=0.0)
    args = _build_parser().parse_args(["synthesize", "hello", "--prompt", "fl001", "--top-k", "5", "--no-ras", "--speed", "0.8"])
    assert _sampling(args, cool.sampling) == SamplingConfig(temperature=0.5, upper_temperature=0.0, top_k=5,
                                                            repetition_aware=False, speed=0.8)
    used = []
    plan = cool.plan
    monkeypatch.setattr(cool, "plan", lambda request, sampling: used.append(sampling) or plan(request, sampling))
    cool.synthesize("Hello.", "fl001", seed=0)
    cool.synthesize("Hello.", "fl001", seed=0, sampling=SamplingConfig())
    assert used == [cool.sampling, SamplingConfig()]
    saved = json.loads((tmp_path / "cool" / "valle.json").read_text())
    (tmp_path / "cool" / "valle.json").write_text(json.dumps(saved | {"sampling": {"temprature": 0.5}}))
    with pytest.raises(ConfigError, match=r"unknown sampling config field\(s\) \['temprature'\]"):
        VallE.from_pretrained(tmp_path / "cool")


@pytest.mark.parametrize("command, kind", [(["train", "--data", "d", "--out", "o"], "training config"),
                                           (["codec", "train", "--manifest", "m.jsonl", "--out", "o"], "codec config")])
def test_config_files_are_read_with_clear_errors(tmp_path, capsys, command, kind):
    """`valle train --config` names a training config and `valle codec train --model-config` a codec's layout."""
    option = "--config" if command[0] == "train" else "--model-config"
    bad = tmp_path / "bad.json"
    for content, message in ((None, "does not exist"), ("{not json", "is not valid JSON"), ("[1, 2]", "JSON object"),
                             ('{"no_such_field": 1}', "unknown")):
        if content is not None:
            bad.write_text(content)
        assert main([*command, option, str(bad)]) == 2
        err = capsys.readouterr().err
        assert kind in err and message in err and "Traceback" not in err
