"""Tokenisation to shards: round trip, layout, determinism, resume after a kill, errors, reader."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TINY, speechlike
from safetensors import safe_open

from valle.audio import load_audio
from valle.cli import main
from valle.codec import load_codec
from valle.codec.compact import CompactCodec
from valle.data.manifest import Utterance, write_manifest
from valle.data.shards import INDEX_FILE, TokenizedCorpus, open_corpus, read_shard, shard_name
from valle.data.tokenize import summary, tokenize_manifest
from valle.errors import ConfigError, CorpusError
from valle.text import PhonemeTokenizer, PhonemeVocab

TEXTS = ["Hello world.", "The quick brown fox jumps.", "Good morning, Sam!", "It costs 5 dollars.", "Where is it?",
         "Thank you."]


def _codec_folder(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = CompactCodec(TINY)
    model.train()
    model(torch.randn(4, 16000) * 0.1)  # k-means initialisation of the codebooks
    return model.save_pretrained(path)


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory) -> Path:
    return _codec_folder(tmp_path_factory.mktemp("codec") / "tiny", seed=0)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("wavs")
    paths = []
    for i, seconds in enumerate((0.5, 0.73, 1.0, 1.21, 1.5, 0.64)):
        paths.append(folder / f"w{i}.wav")
        sf.write(paths[-1], speechlike(seconds, 16000, seed=i), 16000 if i % 2 else 22050)
    paths.append(folder / "silent.wav")
    sf.write(paths[-1], np.zeros(12000, dtype=np.float32), 16000)
    return paths


def _manifest(path: Path, wavs: list[Path], n: int = 9, bad: bool = True) -> Path:
    rows = [Utterance(f"utt{i:03d}", wavs[i % 6], TEXTS[i % len(TEXTS)], f"spk{i % 3}") for i in range(n)]
    if bad:
        rows[3] = Utterance("utt003", wavs[0], "!!!", "spk0")
        rows[6] = Utterance("utt006", wavs[6], "A silent one.", "spk0")
    write_manifest(rows, path)
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_round_trip_gives_the_tokenizers_phonemes_and_the_codecs_codes(tmp_path, codec_dir, wavs):
    manifest = _manifest(tmp_path / "m.jsonl", wavs, bad=False)
    out = tokenize_manifest(manifest, codec_dir, tmp_path / "out", shard_size=4, workers=1)
    corpus = TokenizedCorpus(out)
    codec, tokenizer = load_codec(codec_dir), PhonemeTokenizer()
    assert len(corpus) == 9 and corpus.ids == [f"utt{i:03d}" for i in range(9)]
    for i, id_ in enumerate(corpus.ids):
        item = corpus[id_]
        assert item.id == id_ and item.speaker == f"spk{i % 3}" and item.text == TEXTS[i % len(TEXTS)]
        samples = load_audio(wavs[i % 6], 16000)
        assert item.phonemes.dtype == torch.int64 and item.phonemes.tolist() == tokenizer(item.text, "en-us")
        assert item.codes.dtype == torch.int64 and torch.equal(item.codes, codec.encode(torch.from_numpy(samples)[None])[0])
        assert item.codes.shape[1] == -(-len(samples) // 320)  # the frames that cover the audio
        assert item.duration == pytest.approx(len(samples) / 16000, abs=1e-4)
        assert corpus[i].id == id_
    assert corpus[-1].id == "utt008"
    assert corpus.vocab == tokenizer.vocab and corpus.codec.n_codebooks == 4 and corpus.codec.name == str(codec_dir)
    assert corpus.n_frames == [corpus[i].codes.shape[1] for i in range(9)]
    with pytest.raises(KeyError, match="no utterance 'nope'"):
        corpus["nope"]
    with pytest.raises(IndexError):
        corpus[9]


def test_shards_by_position_index_int16_and_skipped_rows(tmp_path, codec_dir, wavs):
    manifest = _manifest(tmp_path / "m.jsonl", wavs)
    out = tokenize_manifest(manifest, codec_dir, tmp_path / "out", shard_size=4, workers=1)
    assert sorted(p.name for p in out.iterdir()) == [INDEX_FILE, shard_name(0), shard_name(1), shard_name(2)]
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["format"] == 1 and index["shard_size"] == 4
    assert {k: index["codec"][k] for k in ("name", "sample_rate", "frame_rate", "n_codebooks", "codebook_size")} == \
        {"name": str(codec_dir), "sample_rate": 16000, "frame_rate": 50.0, "n_codebooks": 4, "codebook_size": 32}
    assert index["vocab"] == PhonemeTokenizer().vocab.to_dict()
    assert index["manifest"]["path"] == str(manifest) and len(index["manifest"]["sha256"]) == 64
    assert [s["ids"] for s in index["shards"]] == [["utt000", "utt001", "utt002"], ["utt004", "utt005", "utt007"], ["utt008"]]
    assert [s["utterances"] for s in index["shards"]] == [3, 3, 1] and index["utterances"] == 7
    assert index["frames"] == sum(s["frames"] for s in index["shards"]) == sum(TokenizedCorpus(out).n_frames)
    skipped = {s["id"]: s["reason"] for s in index["skipped"]}
    assert list(skipped) == ["utt003", "utt006"]
    assert "nothing to speak" in skipped["utt003"] and "silent" in skipped["utt006"]

    with safe_open(str(out / shard_name(1)), framework="pt") as f:
        assert f.get_tensor("codes").dtype == torch.int16 and f.get_tensor("phonemes").dtype == torch.int16
        assert f.get_tensor("codes").shape == (4, index["shards"][1]["frames"])
        assert f.get_tensor("code_offsets").tolist()[-1] == index["shards"][1]["frames"]
        metadata = json.loads(f.metadata()["valle"])
    assert metadata["ids"] == ["utt004", "utt005", "utt007"] and metadata["speakers"] == ["spk1", "spk2", "spk1"]
    assert metadata["texts"][0] == TEXTS[4] and metadata["rows"] == [4, 8] and metadata["shard_size"] == 4
    assert [s["id"] for s in metadata["skipped"]] == ["utt006"]
    assert b"pickle" not in (out / shard_name(1)).read_bytes()

    text = summary(out)
    assert f"to {out}" in text and "7 utterances" in text and "skipped 2 of 9" in text and "utt003: nothing to speak" in text


def test_same_bytes_whatever_the_number_of_workers(tmp_path, codec_dir, wavs):
    manifest = _manifest(tmp_path / "m.jsonl", wavs, n=11)
    one = tokenize_manifest(manifest, codec_dir, tmp_path / "one", shard_size=2, workers=1)
    two = tokenize_manifest(manifest, codec_dir, tmp_path / "two", shard_size=2, workers=2)
    assert len(_files(one)) == 7 and _files(one) == _files(two)


def _cli(manifest: Path, codec_dir: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "valle.cli", "data", "tokenize", str(manifest), "--codec", str(codec_dir),
            "--out", str(out), "--shard-size", "1", "--workers", "1"]


def test_killed_run_resumes_to_the_same_bytes(tmp_path, codec_dir, wavs):
    manifest = _manifest(tmp_path / "m.jsonl", wavs, n=150)
    reference = _files(tokenize_manifest(manifest, codec_dir, tmp_path / "reference", shard_size=1, workers=1))
    out = tmp_path / "out"
    process = subprocess.Popen(_cli(manifest, codec_dir, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and len(list(out.glob("shard-*.safetensors"))) >= 3:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait(timeout=60)
    if (out / INDEX_FILE).exists():  # it finished first: make it look like a kill late in the run
        assert process.returncode == 0, process.stderr.read().decode()
        (out / INDEX_FILE).unlink()
        for s in range(100, 150):
            (out / shard_name(s)).unlink()
        (out / f".{shard_name(100)}.abc123.tmp").write_bytes(reference[shard_name(100)][:100])
    else:
        assert process.returncode == -signal.SIGKILL
    finished = sorted(out.glob("shard-*.safetensors"))
    assert 1 <= len(finished) < 150
    for path in finished:  # whatever is under a final name is complete
        read_shard(path)
    kept = {path.name: path.stat().st_ino for path in finished}

    rerun = subprocess.run(_cli(manifest, codec_dir, out), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"to {out}" in rerun.stdout and "148 utterances" in rerun.stdout and "skipped 2 of 150" in rerun.stdout
    assert _files(out) == reference  # no temporary files left, the same bytes
    assert {name: (out / name).stat().st_ino for name in kept} == kept  # finished shards were kept, not redone


def test_truncated_or_foreign_shards_are_redone(tmp_path, codec_dir, wavs):
    manifest = _manifest(tmp_path / "m.jsonl", wavs)
    out = tokenize_manifest(manifest, codec_dir, tmp_path / "out", shard_size=2, workers=1)
    reference = _files(out)
    (out / shard_name(0)).write_bytes(reference[shard_name(0)][:-7])  # truncated under its final name
    (out / shard_name(1)).write_bytes(reference[shard_name(1)][:-2] + b"\x00\x01")  # same size, wrong content
    (out / shard_name(2)).write_bytes(b"not a shard")
    (out / shard_name(3)).write_bytes(reference[shard_name(4)])  # a valid shard in the wrong place
    (out / shard_name(7)).write_bytes(reference[shard_name(0)])  # a shard past the last one
    with pytest.raises(CorpusError, match="fails its checksum"):
        read_shard(out / shard_name(1))
    untouched = (out / shard_name(4)).stat().st_ino
    tokenize_manifest(manifest, codec_dir, out, shard_size=2, workers=1)
    assert _files(out) == reference and (out / shard_name(4)).stat().st_ino == untouched

    # another version of the manifest: its shards are redone, the index follows
    _manifest(manifest, wavs, n=5, bad=False)
    tokenize_manifest(manifest, codec_dir, out, shard_size=2, workers=1)
    assert sorted(p.name for p in out.iterdir()) == [INDEX_FILE, shard_name(0), shard_name(1), shard_name(2)]
    assert TokenizedCorpus(out).ids == [f"utt{i:03d}" for i in range(5)]


def test_errors_name_the_problem(tmp_path, codec_dir, wavs, capsys, monkeypatch):
    manifest = _manifest(tmp_path / "m.jsonl", wavs, n=4, bad=False)
    with pytest.raises(CorpusError, match="does not exist"):
        tokenize_manifest(tmp_path / "missing.jsonl", codec_dir, tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown codec 'soundstream'"):
        tokenize_manifest(manifest, "soundstream", tmp_path / "out")
    with pytest.raises(ConfigError, match="at least 1"):
        tokenize_manifest(manifest, codec_dir, tmp_path / "out", shard_size=0)

    out = tokenize_manifest(manifest, codec_dir, tmp_path / "out", shard_size=2, workers=1)
    with pytest.raises(ConfigError, match="shards of 2 utterances.*another --out"):
        tokenize_manifest(manifest, codec_dir, out, shard_size=3, workers=1)
    other = _codec_folder(tmp_path / "other-codec", seed=1)
    with pytest.raises(ConfigError, match="another codec.*another --out"):
        tokenize_manifest(manifest, other, out, shard_size=2, workers=1)
    (out / INDEX_FILE).unlink()  # the shards alone tell too
    with pytest.raises(ConfigError, match="another codec"):
        tokenize_manifest(manifest, other, out, shard_size=2, workers=1)

    assert main(["data", "tokenize", str(tmp_path / "missing.jsonl"), "--codec", str(codec_dir), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: manifest")

    real = load_codec(codec_dir)
    monkeypatch.setattr(type(real), "codebook_size", property(lambda self: 65536))
    with pytest.raises(ConfigError, match="int16"):
        tokenize_manifest(manifest, codec_dir, tmp_path / "big", workers=1)


def test_reader_errors(tmp_path, codec_dir, wavs):
    with pytest.raises(CorpusError, match="no index.json.*valle data tokenize"):
        TokenizedCorpus(tmp_path)
    out = tokenize_manifest(_manifest(tmp_path / "m.jsonl", wavs, n=4, bad=False), codec_dir, tmp_path / "out",
                            shard_size=2, workers=1)
    (out / shard_name(1)).unlink()
    corpus = TokenizedCorpus(out)
    assert corpus["utt001"].id == "utt001"
    with pytest.raises(CorpusError, match="shard-00001.safetensors listed in index.json is missing"):
        corpus["utt002"]


def test_several_folders_read_as_one_corpus_with_the_longest_vocabulary(tmp_path, codec_dir, wavs):
    """A corpus tokenised with vocabulary version 1 joins one of version 2 (its ids keep their phones)."""
    first = tokenize_manifest(_manifest(tmp_path / "a.jsonl", wavs, n=3, bad=False), codec_dir, tmp_path / "a", workers=1)
    second = tokenize_manifest(_manifest(tmp_path / "b.jsonl", wavs, n=5, bad=False), codec_dir, tmp_path / "b", workers=1)
    index = json.loads((first / INDEX_FILE).read_text())
    (first / INDEX_FILE).write_text(json.dumps(index | {"vocab": PhonemeVocab(version="1").to_dict()}))
    assert isinstance(open_corpus([first]), TokenizedCorpus)
    joined = open_corpus([first, second])
    parts = TokenizedCorpus(first), TokenizedCorpus(second)
    assert len(joined) == 8 and joined.vocab == PhonemeVocab() and joined.codec == parts[0].codec
    assert joined.n_frames == parts[0].n_frames + parts[1].n_frames
    assert [joined[i].id for i in range(8)] == parts[0].ids + parts[1].ids
    assert torch.equal(joined[4].codes, parts[1][1].codes) and joined[-1].id == parts[1].ids[-1]
    assert parts[1].speakers() == [parts[1][i].speaker for i in range(5)]  # from the shards' headers alone
    assert joined.speakers() == [f"{first}:{s}" for s in parts[0].speakers()] + [f"{second}:{s}" for s in parts[1].speakers()]

    other_codec = tokenize_manifest(tmp_path / "a.jsonl", _codec_folder(tmp_path / "other", seed=1), tmp_path / "c", workers=1)
    with pytest.raises(CorpusError, match="another codec"):
        open_corpus([first, other_codec])
    shuffled = PhonemeVocab([*index["vocab"]["tokens"][:4], *reversed(index["vocab"]["tokens"][4:])], version="x")
    (first / INDEX_FILE).write_text(json.dumps(index | {"vocab": shuffled.to_dict()}))
    with pytest.raises(CorpusError, match="other phones.*tokenise it again"):
        open_corpus([first, second])
