"""`valle data mix`: human and synthetic corpora in one, whole human speakers held out."""

import json

import pytest

from valle.cli import main
from valle.data.manifest import Utterance, read_manifest, write_manifest
from valle.data.mix import MixConfig, format_table, human_source, mix_corpora, synthetic_source
from valle.errors import ConfigError, CorpusError


def _rows(speaker: str, language: str, n: int, seconds: float = 4.5) -> list[Utterance]:
    return [Utterance(f"{speaker}_{i}", f"/audio/{speaker}/{i}.wav", f"words {i}", speaker, language, seconds)
            for i in range(n)]


@pytest.fixture
def inputs(tmp_path):
    """Two human sources (English, French, Czech; one speaker with too little long speech, one with too much speech)
    and a synthetic corpus."""
    asterisk = _rows("ast-en-a", "en-us", 10) + _rows("ast-en-b", "en-us", 9) + _rows("ast-fr-c", "fr-fr", 12)
    fillets = (_rows("fil-cs-d", "cs", 20) + _rows("fil-cs-e", "cs", 8) + _rows("fil-cs-f", "cs", 30, seconds=3.0)
               + _rows("fil-cs-g", "cs", 200, seconds=10.0))
    write_manifest(asterisk, tmp_path / "asterisk.jsonl")
    write_manifest(fillets, tmp_path / "fillets.jsonl")
    synthetic = tmp_path / "synth"
    for split, speakers in (("train", ["esp001", "fl001"]), ("valid", ["esp002"]), ("test", ["fl002"])):
        write_manifest([row for s in speakers for row in _rows(s, "en-us", 4)], synthetic / f"{split}.jsonl")
    return [human_source(tmp_path / "asterisk.jsonl"), human_source(tmp_path / "fillets.jsonl"), synthetic_source(synthetic)]


def test_whole_human_speakers_are_held_out_across_languages_and_synthetic_splits_are_kept(inputs, tmp_path):
    summary = mix_corpora(inputs, tmp_path / "mix", MixConfig(held_out=4, seed=1))
    splits = {split: read_manifest(tmp_path / "mix" / f"{split}.jsonl") for split in ("train", "valid", "test")}
    speakers = {split: {row.speaker for row in rows} for split, rows in splits.items()}
    humans = set(summary["human_speakers"])
    held = (speakers["valid"] | speakers["test"]) & humans
    assert len(held) == 4 and not held & speakers["train"] and not speakers["valid"] & speakers["test"]
    assert len(speakers["valid"] & humans) == len(speakers["test"] & humans) == 2
    assert "fil-cs-f" in speakers["train"]  # 30 clips, but none as long as the paper's targets
    assert "fil-cs-g" in speakers["train"]  # most of the human hours: it teaches the most
    assert {"en-us", "fr-fr", "cs"} == {row.language for split in ("valid", "test") for row in splits[split] if row.speaker in held}
    assert {"esp001", "fl001"} <= speakers["train"] and "esp002" in speakers["valid"] and "fl002" in speakers["test"]
    assert sum(map(len, splits.values())) == 10 + 9 + 12 + 20 + 8 + 30 + 200 + 16  # every row, once
    total = {(r["kind"], r["split"]): r for r in summary["table"] if r["source"] == "all"}
    assert total[("human", "train")]["speakers"] == 3 and total[("synthetic", "train")]["utterances"] == 8
    assert total[("human", "valid")]["hours"] == pytest.approx(sum(r.duration for r in splits["valid"] if r.speaker in humans) / 3600)
    assert "| all | all | human | test |" in format_table(summary["table"])


def test_the_same_inputs_and_seed_give_the_same_bytes(inputs, tmp_path):
    def files(out):
        mix_corpora(inputs, out, MixConfig(held_out=2, seed=3))
        return {name: (out / name).read_bytes() for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "mix.json")}

    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_bad_mixes_are_refused_clearly(inputs, tmp_path):
    with pytest.raises(CorpusError, match="only 5 human speakers have 8 clips of 4 s or more and at most 10% of the human "
                                          "hours; holding out 5 needs 6"):
        mix_corpora(inputs, tmp_path / "m", MixConfig(held_out=5))
    with pytest.raises(ConfigError, match="at least one human manifest"):
        mix_corpora(inputs[2:], tmp_path / "m")
    with pytest.raises(CorpusError, match="speaker 'ast-en-a' is in both asterisk and again"):
        write_manifest(_rows("ast-en-a", "en-us", 2), tmp_path / "again.jsonl")
        mix_corpora([*inputs, human_source(tmp_path / "again.jsonl")], tmp_path / "m")
    with pytest.raises(CorpusError, match="lacks valid.jsonl, test.jsonl"):
        (tmp_path / "half").mkdir()
        write_manifest(_rows("x", "en-us", 1), tmp_path / "half" / "train.jsonl")
        synthetic_source(tmp_path / "half")
    for bad in ({"held_out": 1}, {"max_share": 0}):
        with pytest.raises(ConfigError, match="held_out >= 2"):
            MixConfig(**bad)


def test_cli_prints_the_table_and_the_held_out_speakers(inputs, tmp_path, capsys):
    assert main(["data", "mix", str(tmp_path / "cli"), "--human", str(tmp_path / "asterisk.jsonl"), "--human",
                 str(tmp_path / "fillets.jsonl"), "--synthetic", str(tmp_path / "synth"), "--held-out", "2"]) == 0
    out = capsys.readouterr().out
    assert "| source | language | kind | split |" in out and "human speakers held out:" in out
    assert json.loads((tmp_path / "cli" / "mix.json").read_text())["config"]["held_out"] == 2
