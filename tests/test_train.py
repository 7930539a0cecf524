"""The trainer: both stages, exact resume (in process and after a kill), DDP on CPU, batching, training curves."""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY, speechlike

import valle.train.align
from valle.cli import main
from valle.codec import CodecRecord
from valle.codec.compact import CompactCodec
from valle.data.manifest import Utterance, write_manifest
from valle.data.pitch import track_corpus
from valle.data.shards import TokenizedCorpus, TokenizedUtterance, write_alignments
from valle.data.tokenize import tokenize_manifest
from valle.errors import ConfigError, CorpusError
from valle.model import ARModel, Stage, TrainedOn, preset
from valle.model.aligner import AlignerConfig
from valle.text import PhonemeVocab
from valle.train.align import AlignerTraining, align_corpus, fit_aligner, flat_start, train_aligner, word_starts
from valle.train.batching import BucketBatchSampler, OtherUtterances, collate, phoneme_languages, speaker_accents
from valle.train.config import TrainConfig
from valle.train.plots import plot_metrics
from valle.train.trainer import AUDIO_EMBEDDING, LANGUAGE_EMBEDDING, TEXT_EMBEDDING, Trainer, kept_stage, warm_start
from valle.train.validate import heldout_metrics, loss_per_frame

SENTENCES = ["Hello world.", "A quick brown fox jumps.", "She sells sea shells.", "Time flies like an arrow.",
             "Colourless green ideas sleep.", "The rain in Spain stays mainly in the plain."]
CONFIG = TrainConfig(preset="tiny", steps=6, max_tokens=400, warmup_steps=2, log_every=1, checkpoint_every=3,
                     learning_rate=2e-3)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    import soundfile as sf

    root = tmp_path_factory.mktemp("train")
    torch.manual_seed(0)
    codec = CompactCodec(TINY).train()
    codec(torch.randn(4, 16000) * 0.1)
    codec_dir = codec.save_pretrained(root / "codec")
    rows = []
    for i in range(12):
        path = root / "wav" / f"u{i:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, speechlike(0.5 + 0.1 * i, 16000, seed=i), 16000)
        rows.append(Utterance(f"u{i:02d}", path, SENTENCES[i % len(SENTENCES)], f"s{i % 3}", duration=0.5 + 0.1 * i))
    write_manifest(rows, root / "m.jsonl")
    return tokenize_manifest(root / "m.jsonl", codec=codec_dir, out=root / "shards", shard_size=5, workers=1)


@pytest.fixture(scope="module")
def aligned_shards(shards, tmp_path_factory) -> Path:
    """The shards with flat-start alignments: what the frame stage trains on."""
    folder = Path(shutil.copytree(shards, tmp_path_factory.mktemp("aligned") / "shards"))
    corpus = TokenizedCorpus(folder)
    silent = torch.tensor(corpus.vocab.silent())
    write_alignments(folder, [flat_start(corpus[i], silent[corpus[i].phonemes]) for i in range(len(corpus))], source="flat")
    return folder


@pytest.fixture(scope="module")
def pitched_shards(aligned_shards, tmp_path_factory) -> Path:
    """The aligned shards with pitch tracks of their recordings: what a frame stage told the pitch trains on."""
    folder = Path(shutil.copytree(aligned_shards, tmp_path_factory.mktemp("pitched") / "shards"))
    assert main(["data", "pitch", str(folder), "--workers", "2"]) == 0
    return folder


def _losses(out: Path) -> list[tuple[int, float]]:
    records = map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
    return [(r["step"], r["loss"]) for r in records if "loss" in r]  # training records, not held-out scores


# Each stage in the paper's layout, and with the AR predicting two levels (the NAR the rest).
STAGES = [("ar", 1), ("nar", 1), ("ar", 2), ("nar", 2)]


@pytest.mark.parametrize("stage,ar_levels", STAGES)
def test_stage_trains_and_saves_a_self_describing_model(shards, tmp_path, stage, ar_levels):
    trained = Trainer(replace(CONFIG, stage=stage, model={"ar_levels": ar_levels}), shards, tmp_path / "run").fit()
    model = Stage.from_pretrained(tmp_path / "run" / "model")
    assert model.kind == stage and model.trained_on.codec.n_codebooks == 4 and model.trained_on.vocab.version
    assert type(model) is type(trained) and not model.training
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in model.state_dict().items())
    assert [s for s, _ in _losses(tmp_path / "run")] == list(range(1, 7))
    assert model.config.ar_levels == ar_levels
    if stage == "nar" or ar_levels > 1:
        levels = {k for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) for k in r
                  if k.startswith("accuracy_level")}
        assert levels == ({f"accuracy_level{i}" for i in range(ar_levels + 1, 5)} if stage == "nar"
                          else {f"accuracy_level{i}" for i in range(1, ar_levels + 1)})


def test_a_stage_of_an_earlier_vocabulary_grows_into_the_current_one(tmp_path):
    """Version 2 keeps version 1's ids: their rows of the text embedding carry over, the new phones' start fresh."""
    record = CodecRecord("compact", 16000, 50.0, TINY.n_codebooks, TINY.codebook_size, "0" * 64)
    first, current = PhonemeVocab(version="1"), PhonemeVocab()
    torch.manual_seed(0)
    old = ARModel(preset("tiny", n_phonemes=len(first), n_codebooks=TINY.n_codebooks, codebook_size=TINY.codebook_size))
    old.save_pretrained(tmp_path / "v1", TrainedOn(first, record))
    model = ARModel(replace(old.config, n_phonemes=len(current)))
    fresh = model.state_dict()[TEXT_EMBEDDING].clone()
    started = warm_start(model, tmp_path / "v1", current)
    rows = model.state_dict()[TEXT_EMBEDDING]
    assert TEXT_EMBEDDING in started["copied"] and not started["fresh"]
    assert torch.equal(rows[:len(first)], old.state_dict()[TEXT_EMBEDDING]) and torch.equal(rows[len(first):], fresh[len(first):])
    shuffled = PhonemeVocab([*first.tokens[:4], *reversed(current.tokens[4:])], version="x")  # the same ids, other phones
    model = ARModel(replace(old.config, n_phonemes=len(current)))
    assert TEXT_EMBEDDING in warm_start(model, tmp_path / "v1", shuffled)["fresh"]


def test_an_ar_that_reads_more_levels_of_its_past_starts_as_the_stage_it_grew_from(tmp_path):
    """The new history levels' embedding rows start at zero, so the grown AR's logits equal the source's."""
    record = CodecRecord("compact", 16000, 50.0, TINY.n_codebooks, TINY.codebook_size, "0" * 64)
    vocab = PhonemeVocab()
    torch.manual_seed(0)
    old = ARModel(preset("tiny", n_phonemes=len(vocab), n_codebooks=TINY.n_codebooks, codebook_size=TINY.codebook_size,
                         ar_levels=3, history_levels=1))
    old.save_pretrained(tmp_path / "h1", TrainedOn(vocab, record))
    model = ARModel(replace(old.config, history_levels=3))
    started = warm_start(model, tmp_path / "h1", vocab)
    rows = model.state_dict()[AUDIO_EMBEDDING]
    assert AUDIO_EMBEDDING in started["copied"] and not started["fresh"]
    assert rows.shape[0] == 3 * old.state_dict()[AUDIO_EMBEDDING].shape[0] and not rows[rows.shape[0] // 3:].any()
    phonemes, codes = torch.randint(4, len(vocab), (2, 7)), torch.randint(0, TINY.codebook_size, (2, TINY.n_codebooks, 11))
    lens = (torch.tensor([7, 5]), torch.tensor([11, 8]))
    old.eval(), model.eval()
    assert torch.allclose(model(phonemes, lens[0], codes, lens[1]).logits, old(phonemes, lens[0], codes, lens[1]).logits)
    model(phonemes, lens[0], codes, lens[1]).loss.backward()
    assert model.audio_embedding.weight.grad[rows.shape[0] // 3:].any()  # the new levels do learn


def test_a_run_can_start_from_a_trained_stage_of_another_layout(shards, tmp_path, capsys):
    """The paper's AR (level 1) gives its transformer to an AR that predicts two levels through a new depth decoder."""
    Trainer(replace(CONFIG, stage="ar"), shards, tmp_path / "paper").fit()
    source = Stage.from_pretrained(tmp_path / "paper" / "model")
    config = replace(CONFIG, stage="ar", model={"ar_levels": 2, "history_levels": 1}, init=str(tmp_path / "paper" / "model"))
    started = Trainer(config, shards, tmp_path / "depth").model.state_dict()
    assert "started from" in capsys.readouterr().out
    theirs = source.state_dict()
    shared = [name for name in started if name in theirs]
    assert "audio_embedding.weight" in shared and any(name.startswith("layers.") for name in shared)
    assert all(torch.equal(started[name], theirs[name]) for name in shared)
    assert any(name.startswith("depth.") for name in started) and "head.weight" not in started
    with pytest.raises(ConfigError, match="shares no weight matrix"):
        Trainer(replace(CONFIG, stage="ar", init=str(tmp_path / "paper" / "model"), preset="small"), shards, tmp_path / "x")


def test_a_run_may_train_only_some_parts_of_the_stage_it_starts_from(shards, tmp_path):
    """`trained` names the parts that learn; every other weight stays as the `init` stage had it."""
    Trainer(replace(CONFIG, stage="ar", steps=3), shards, tmp_path / "source").fit()
    source = Stage.from_pretrained(tmp_path / "source" / "model").state_dict()
    config = replace(CONFIG, stage="ar", steps=3, init=str(tmp_path / "source" / "model"),
                     trained=["text_embedding", "layers.1"])
    Trainer(config, shards, tmp_path / "part").fit()
    tuned = Stage.from_pretrained(tmp_path / "part" / "model").state_dict()
    changed = {name for name in tuned if not torch.equal(tuned[name], source[name])}
    assert "text_embedding.weight" in changed and any(name.startswith("layers.1.") for name in changed)
    assert all(name == "text_embedding.weight" or name.startswith("layers.1.") for name in changed)
    with pytest.raises(ConfigError, match="no part layers.9"):
        Trainer(replace(config, trained=["layers.9"]), shards, tmp_path / "x")
    with pytest.raises(ConfigError, match="give init"):
        replace(CONFIG, trained=["text_embedding"])


@pytest.mark.parametrize("stage,ar_levels", STAGES)
def test_interrupted_run_resumes_exactly(shards, tmp_path, stage, ar_levels):
    config = replace(CONFIG, stage=stage, model={"ar_levels": ar_levels})
    straight = Trainer(config, shards, tmp_path / "straight")
    straight.fit()
    stopped = Trainer(config, shards, tmp_path / "resumed")
    stopped.fit(stop_after=3)
    latest = Stage.from_pretrained(tmp_path / "resumed" / "latest")  # the run so far, ready to try out
    assert all(torch.equal(v, stopped.model.state_dict()[k]) for k, v in latest.state_dict().items())
    resumed = Trainer(config, shards, tmp_path / "resumed")
    resumed.fit(resume=True)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_killed_process_resumes_to_the_same_losses(shards, tmp_path):
    config = replace(CONFIG, steps=40, checkpoint_every=10, log_every=1)
    (tmp_path / "c.json").write_text(json.dumps(config.to_dict()))
    command = [sys.executable, "-m", "valle.train", "--config", str(tmp_path / "c.json"), "--data", str(shards), "--device", "cpu"]
    subprocess.run([*command, "--out", str(tmp_path / "straight")], check=True, capture_output=True)
    process = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "killed" / "checkpoint.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "model").exists() or process.returncode == 0
    subprocess.run([*command, "--out", str(tmp_path / "killed"), "--resume"], check=True, capture_output=True)
    assert _losses(tmp_path / "killed") == _losses(tmp_path / "straight")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, shards: str, out: str, ar_levels: int, stage: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(replace(CONFIG, stage=stage, steps=3, max_tokens=300, model={"ar_levels": ar_levels}), shards, out,
                      device="cpu")
    model = trainer.fit()
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("stage,ar_levels", [("ar", 1), ("ar", 2), ("frames", 1)])
def test_ddp_on_cpu_keeps_ranks_identical(shards, aligned_shards, tmp_path, stage, ar_levels):
    out, data = tmp_path / "ddp", aligned_shards if stage == "frames" else shards
    out.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(data), str(out), ar_levels, stage), nprocs=2, join=True)
    zero, one = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(zero[k], one[k]) for k in zero)
    initial = Trainer(replace(CONFIG, stage=stage, steps=3, model={"ar_levels": ar_levels}), data,
                      tmp_path / "fresh").model.state_dict()
    assert any(not torch.equal(zero[k], initial[k]) for k in zero)  # they did train
    assert len(_losses(out)) == 3  # only rank 0 logs


def test_torchrun_launches_the_same_command(shards, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(replace(CONFIG, steps=2, max_tokens=300).to_dict()))
    # --standalone: the rendezvous binds a free port itself, so no port picked beforehand can be taken in between
    result = subprocess.run(["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "valle.train",
                             "--config", str(tmp_path / "c.json"), "--data", str(shards), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[:3000] + "\n...\n" + result.stderr[-2000:]
    assert "trained ar to step 2" in result.stdout and result.stdout.count("trained ar") == 1  # rank 0 reports
    assert Stage.from_pretrained(tmp_path / "run" / "model").kind == "ar"


def test_saved_stage_errors(tmp_path):
    with pytest.raises(ConfigError, match="config.json is missing"):
        Stage.from_pretrained(tmp_path)


def test_bucket_batches_respect_the_budget_and_split_ranks():
    n_phonemes = [5 + i % 7 for i in range(200)]
    n_frames = [20 + 3 * i for i in range(200)]
    single = BucketBatchSampler(n_phonemes, n_frames, max_tokens=2000, seed=1)
    for batch in single.batches:
        assert len(batch) * (max(n_phonemes[i] for i in batch) + max(n_frames[i] for i in batch)) <= 2000
    assert sorted(i for b in single.epoch_batches(0) for i in b) == list(range(200))
    assert single.epoch_batches(0) != single.epoch_batches(1)  # reshuffled per epoch
    ranks = [BucketBatchSampler(n_phonemes, n_frames, 2000, seed=1, rank=r, world_size=2) for r in (0, 1)]
    seen = [{i for b in s.epoch_batches(0) for i in b} for s in ranks]
    assert not seen[0] & seen[1]
    assert len(ranks[0].epoch_batches(0)) == len(ranks[1].epoch_batches(0))
    first = [single.next_batch() for _ in range(len(single.epoch_batches(0)) + 2)]
    assert first[-2:] == single.epoch_batches(1)[:2]


def test_a_finished_run_can_be_resumed_to_train_longer(shards, tmp_path):
    Trainer(CONFIG, shards, tmp_path / "run").fit()
    longer = Trainer(replace(CONFIG, steps=9, checkpoint_every=9), shards, tmp_path / "run")
    longer.fit(resume=True)
    assert longer.step == 9 and [s for s, _ in _losses(tmp_path / "run")] == list(range(1, 10))
    model = Stage.from_pretrained(tmp_path / "run" / "model")  # the final model is rewritten at the new end
    assert all(torch.equal(v, longer.model.state_dict()[k]) for k, v in model.state_dict().items())


def test_a_run_checkpointed_before_a_config_field_existed_resumes_at_its_default(shards, tmp_path):
    Trainer(CONFIG, shards, tmp_path / "run").fit(stop_after=3)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    config = json.loads(state["config"])
    del config["language_input"]  # as a run written before the field was added
    torch.save(state | {"config": json.dumps(config)}, checkpoint)
    resumed = Trainer(CONFIG, shards, tmp_path / "run")
    resumed.fit(resume=True)
    assert resumed.step == 6
    with pytest.raises(ConfigError, match=r"\(language_input, stage differ\)"):
        Trainer(replace(CONFIG, stage="frames", language_input=not CONFIG.language_input), shards,
                tmp_path / "run").fit(resume=True)


def test_a_warm_started_run_resumes_after_its_source_folder_moved(shards, tmp_path):
    Trainer(CONFIG, shards, tmp_path / "source").fit()
    Trainer(replace(CONFIG, init=str(tmp_path / "source" / "model")), shards, tmp_path / "run").fit(stop_after=3)
    shutil.move(tmp_path / "source", tmp_path / "moved")
    resumed = Trainer(replace(CONFIG, init=str(tmp_path / "moved" / "model")), shards, tmp_path / "run")
    resumed.fit(resume=True)
    assert [s for s, _ in _losses(tmp_path / "run")] == list(range(1, CONFIG.steps + 1))


def test_valle_train_starts_from_the_stage_its_init_option_names(shards, tmp_path, capsys):
    from valle.cli import main

    Trainer(CONFIG, shards, tmp_path / "source").fit()
    (tmp_path / "config.json").write_text(json.dumps(CONFIG.to_dict()))
    command = ["train", "--config", str(tmp_path / "config.json"), "--data", str(shards), "--steps", "2"]
    assert main([*command, "--out", str(tmp_path / "run"), "--init", str(tmp_path / "nowhere")]) == 2
    assert "nowhere holds no trained stage" in capsys.readouterr().err
    assert main([*command, "--out", str(tmp_path / "run"), "--init", str(tmp_path / "source" / "model")]) == 0
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert json.loads(state["config"])["init"] == str(tmp_path / "source" / "model")


def test_a_run_on_several_folders_resumes_only_on_the_same_ones(shards, tmp_path):
    run = Trainer(CONFIG, [shards, shards], tmp_path / "run")
    assert len(run.corpus) == 2 * len(TokenizedCorpus(shards))
    run.fit(stop_after=3)
    with pytest.raises(ConfigError, match="trained on 24 utterances, --data now holds 12"):
        Trainer(CONFIG, shards, tmp_path / "run").fit(resume=True)
    Trainer(CONFIG, [shards, shards], tmp_path / "run").fit(resume=True)
    assert [s for s, _ in _losses(tmp_path / "run")] == list(range(1, 7))


def test_training_errors_are_clear(shards, tmp_path):
    with pytest.raises(ConfigError, match="stage must be 'ar', 'nar' or 'frames'"):
        TrainConfig(stage="both")
    with pytest.raises(ConfigError, match=r"unknown training config field\(s\) \['lr'\]"):
        TrainConfig.from_dict({"lr": 1})
    with pytest.raises(ConfigError, match="cost more than max_tokens=10"):
        Trainer(replace(CONFIG, max_tokens=10), shards, tmp_path / "x")
    Trainer(CONFIG, shards, tmp_path / "run").fit(stop_after=3)
    with pytest.raises(ConfigError, match="already holds a run; add --resume"):
        Trainer(CONFIG, shards, tmp_path / "run").fit()
    with pytest.raises(ConfigError, match=r"another training config \(learning_rate differ\)"):
        Trainer(replace(CONFIG, learning_rate=1e-4), shards, tmp_path / "run").fit(resume=True)
    with pytest.raises(ConfigError, match="--resume given but"):
        Trainer(CONFIG, shards, tmp_path / "none").fit(resume=True)


@pytest.mark.parametrize("stage,ar_levels", STAGES)
def test_heldout_metrics_score_every_level_the_stage_predicts(shards, tmp_path, stage, ar_levels):
    corpus = TokenizedCorpus(shards)
    model = Trainer(replace(CONFIG, stage=stage, model={"ar_levels": ar_levels}), shards, tmp_path / "run").model
    metrics = heldout_metrics(model, corpus, max_tokens=100_000)  # one batch
    levels = range(1, ar_levels + 1) if stage == "ar" else range(ar_levels + 1, 5)
    assert {k for k in metrics if k.startswith("loss_level")} == {f"loss_level{i}" for i in levels}
    assert metrics == heldout_metrics(model, corpus, max_tokens=100_000)  # a fixed seed: the same prompts
    assert model.training  # left as it was found
    if stage == "ar":  # one batch of every utterance: the mean loss is the forward pass's own
        phonemes, phoneme_lens, codes, code_lens = collate([corpus[i] for i in range(len(corpus))])
        with torch.no_grad():
            expected = model.eval()(phonemes, phoneme_lens, codes, code_lens).loss.item()
        assert metrics["loss"] == pytest.approx(expected, rel=1e-4)
        if ar_levels == 1:  # the text's worth: the same frames scored without the phonemes
            with torch.no_grad():
                untold = model(phonemes, torch.zeros_like(phoneme_lens), codes, code_lens).loss.item()
            assert metrics["text_gain"] == pytest.approx(untold - expected, rel=1e-3, abs=1e-5)
            assert metrics["text_gain"] != 0
    else:
        assert "text_gain" not in metrics
    fewer = heldout_metrics(model, corpus, max_utterances=3)
    assert fewer != metrics and all(0 <= v <= 1 for k, v in fewer.items() if k.startswith("accuracy"))
    assert loss_per_frame([metrics]) == pytest.approx(sum(metrics[f"loss_level{i}"] for i in levels))


@pytest.mark.parametrize("cpu_time", [False, True])
def test_training_scores_held_out_speakers_and_stops_at_its_time_limit(shards, tmp_path, cpu_time):
    config = replace(CONFIG, steps=6, valid_every=2, valid_utterances=4)
    Trainer(config, shards, tmp_path / "run", valid=shards).fit()
    scored = [r["step"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
              if "valid_loss" in r]
    assert scored == [2, 4, 6]
    stopped = Trainer(config, shards, tmp_path / "limited", valid=shards)
    stopped.fit(time_limit=0.0, cpu_time=cpu_time)
    assert stopped.step == 0 and Stage.from_pretrained(tmp_path / "limited" / "model").kind == "ar"
    part = Trainer(replace(config, log_every=4), shards, tmp_path / "part")
    part.fit(stop_after=3)
    part.fit(resume=True, time_limit=0.0, cpu_time=cpu_time)  # stops before its first step: nothing new to log
    assert part.step == 3 and [s for s, _ in _losses(tmp_path / "part")] == [3]  # the step it stopped at is logged
    timed = Trainer(replace(config, steps=100_000, log_every=100_000), shards, tmp_path / "timed")
    timed.fit(time_limit=2.0, cpu_time=cpu_time)
    assert 0 < timed.step < 100_000 and _losses(tmp_path / "timed")[-1][0] == timed.step
    resumed = Trainer(config, shards, tmp_path / "limited")
    resumed.fit(resume=True)
    assert resumed.step == 6 and [s for s, _ in _losses(tmp_path / "limited")] == list(range(1, 7))
    hours = [r["hours"] for r in map(json.loads, (tmp_path / "limited" / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert hours == sorted(hours) and hours[0] > 0  # training time goes on across the resumed parts


def test_validate_command_prints_each_level_and_writes_json(shards, tmp_path, capsys):
    for stage in ("ar", "nar"):
        Trainer(replace(CONFIG, stage=stage, steps=2, model={"ar_levels": 2}), shards, tmp_path / stage).fit()
    assert main(["validate", str(tmp_path / "ar" / "model"), str(tmp_path / "nar" / "model"), "--data", str(shards),
                 "--json", str(tmp_path / "v.json")]) == 0
    printed = capsys.readouterr().out
    assert "level 1 loss / top-10" in printed and "level 4 loss / top-10" in printed and "nats per frame" in printed
    assert f"{tmp_path / 'ar' / 'model'}: alignment" in printed and f"{tmp_path / 'nar' / 'model'}: alignment" not in printed
    assert f"{tmp_path / 'ar' / 'model'}: the text is worth" in printed and f"{tmp_path / 'nar' / 'model'}: the text" not in printed
    saved = json.loads((tmp_path / "v.json").read_text())
    assert set(saved[str(tmp_path / "ar" / "model")]) >= {"loss_level1", "loss_level2", "alignment", "text_gain"}
    assert "text_gain_onsets" not in saved[str(tmp_path / "ar" / "model")]  # a stage told no phoneme: no onsets
    assert set(saved[str(tmp_path / "nar" / "model")]) >= {"loss_level3", "loss_level4"}


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


def test_a_run_with_language_input_knows_its_corpus_languages(shards, tmp_path):
    """VALL-E X: each phoneme's language reaches both stages; held-out speech in another language says none."""
    rows = [Utterance(f"l{i}", shards.parent / "wav" / f"u{i:02d}.wav", text, "s0", language=language)
            for i, (text, language) in enumerate([("Hola, amigos.", "es"), ("Hello there.", "en-us"), ("Buenos días.", "es")])]
    write_manifest(rows, tmp_path / "m.jsonl")
    corpus = tokenize_manifest(tmp_path / "m.jsonl", codec=shards.parent / "codec", out=tmp_path / "shards", workers=1)
    assert TokenizedCorpus(corpus).languages() == ["en-us", "es"]
    for stage in ("ar", "nar"):
        config = replace(CONFIG, stage=stage, language_input=True, steps=2)
        trained = Trainer(config, corpus, tmp_path / stage, valid=shards).fit()
        assert trained.config.languages == ("en-us", "es")
        assert trained.language_embedding.weight[:2].abs().sum() > 0  # trained away from zero
        model = Stage.from_pretrained(tmp_path / stage / "model")
        assert model.config.languages == ("en-us", "es") and model.language_id("es") == 1
    held_out = [SimpleNamespace(language="es", phonemes=torch.ones(2)), SimpleNamespace(language="de", phonemes=torch.ones(3))]
    assert phoneme_languages(held_out, model, 4).tolist() == [[1, 1, 2, 2], [2, 2, 2, 2]]  # 2: no language
    assert phoneme_languages(held_out, ARModel(preset("tiny")), 4) is None

    # A fine-tune keeps the languages of the stage it starts from, each row by its language, and adds the corpus's others.
    polyglot = type(model)(replace(model.config, languages=("de", "es")))
    state = model.state_dict() | {LANGUAGE_EMBEDDING: torch.stack([torch.randn(model.config.d_model),
                                                                    model.state_dict()[LANGUAGE_EMBEDDING][1],
                                                                    torch.zeros(model.config.d_model)])}
    polyglot.load_state_dict(state)
    polyglot.save_pretrained(tmp_path / "polyglot", model.trained_on)
    tuned = Trainer(replace(config, init=str(tmp_path / "polyglot"), steps=1), corpus, tmp_path / "tuned").fit()
    assert tuned.config.languages == ("de", "es", "en-us")
    rows = tuned.language_embedding.weight.detach()
    torch.testing.assert_close(rows[0], state[LANGUAGE_EMBEDDING][0], rtol=1e-4, atol=0)  # no German: kept, but for decay
    assert not torch.equal(rows[1], state[LANGUAGE_EMBEDDING][1])  # Spanish learns on from its own row
    fresh = type(model)(replace(model.config, languages=("en-us", "fr", "es")))
    warm_start(fresh, tmp_path / "polyglot")
    torch.testing.assert_close(fresh.language_embedding.weight[2], state[LANGUAGE_EMBEDDING][1])
    assert not fresh.language_embedding.weight[:2].any()  # languages the source never knew start at none


def test_a_moving_average_of_the_weights_is_kept_saved_and_resumed_exactly(shards, tmp_path):
    """`ema`: each step moves the average towards the weights by 1 - ema; RUN/ema holds it; resume is exact."""
    config = replace(CONFIG, ema=0.5)
    trainer = Trainer(config, shards, tmp_path / "by_hand")
    expected = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(3):
        trainer.train_step()
        for name, value in trainer.model.state_dict().items():
            expected[name] = 0.5 * expected[name] + 0.5 * value if value.is_floating_point() else value.clone()
    assert all(torch.allclose(trainer.average[k], v) for k, v in expected.items())
    assert not torch.equal(trainer.average["text_embedding.weight"], trainer.model.state_dict()["text_embedding.weight"])

    straight = Trainer(replace(CONFIG, ema=0.9), shards, tmp_path / "straight")
    straight.fit()
    saved = Stage.from_pretrained(tmp_path / "straight" / "ema").state_dict()
    assert all(torch.equal(saved[k], v) for k, v in straight.average.items())
    Trainer(replace(CONFIG, ema=0.9), shards, tmp_path / "resumed").fit(stop_after=3)
    resumed = Trainer(replace(CONFIG, ema=0.9), shards, tmp_path / "resumed")
    resumed.fit(resume=True)
    assert all(torch.equal(resumed.average[k], v) for k, v in straight.average.items())

    Trainer(CONFIG, shards, tmp_path / "late").fit(stop_after=3)  # a run without an average starts keeping one
    late = Trainer(replace(CONFIG, ema=0.9), shards, tmp_path / "late")
    late.resume()
    assert all(torch.equal(late.average[k], v) for k, v in late.model.state_dict().items())
    with pytest.raises(ConfigError, match=r"ema must be in \[0, 1\)"):
        TrainConfig(ema=1.0)


def test_a_long_run_keeps_a_copy_of_its_average_every_keep_every_steps(shards, tmp_path):
    """`keep_every`: RUN/kept/step-N holds the average at step N, for every multiple of it, and survives a resume."""
    config = replace(CONFIG, ema=0.9, keep_every=3)
    Trainer(config, shards, tmp_path / "run").fit(stop_after=3)
    at3 = Stage.from_pretrained(kept_stage(tmp_path / "run", 3)).state_dict()
    ema3 = Stage.from_pretrained(tmp_path / "run" / "ema").state_dict()
    assert all(torch.equal(at3[k], v) for k, v in ema3.items())
    resumed = Trainer(config, shards, tmp_path / "run")
    resumed.fit(resume=True)
    assert sorted(p.name for p in (tmp_path / "run" / "kept").iterdir()) == ["step-000003", "step-000006"]
    at6 = Stage.from_pretrained(kept_stage(tmp_path / "run", 6)).state_dict()
    assert all(torch.equal(at6[k], v) for k, v in resumed.average.items())
    assert not torch.equal(at3["text_embedding.weight"], at6["text_embedding.weight"])
    plain = Trainer(replace(CONFIG, keep_every=6), shards, tmp_path / "plain")  # no average: the weights are kept
    plain.fit()
    at6 = Stage.from_pretrained(kept_stage(tmp_path / "plain", 6)).state_dict()
    assert all(torch.equal(at6[k], v) for k, v in plain.model.state_dict().items())
    with pytest.raises(ConfigError, match="multiple of checkpoint_every"):
        replace(CONFIG, keep_every=4)


def test_the_frame_stage_trains_on_the_codec_latents_resumes_exactly_and_scores_held_out(aligned_shards, shards, tmp_path):
    config = replace(CONFIG, stage="frames", ema=0.9)
    straight = Trainer(config, aligned_shards, tmp_path / "straight", valid=aligned_shards)
    straight.fit()
    stopped = Trainer(config, aligned_shards, tmp_path / "resumed", valid=aligned_shards)
    stopped.fit(stop_after=3)
    resumed = Trainer(config, aligned_shards, tmp_path / "resumed", valid=aligned_shards)
    resumed.fit(resume=True)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = Stage.from_pretrained(tmp_path / "straight" / "model")
    codec = CompactCodec.from_pretrained(TokenizedCorpus(aligned_shards).codec.name)
    assert saved.kind == "frames" and torch.equal(saved.codebooks, codec.codebooks())  # the targets' codebooks, kept
    assert Stage.from_pretrained(tmp_path / "straight" / "ema").kind == "frames"
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert {"accuracy", "latent", "duration"} <= records[0].keys()
    held_out = records[-1]
    assert {f"valid_accuracy_level{level}" for level in range(1, 5)} <= held_out.keys()
    assert all(math.isfinite(held_out[k]) for k in ("valid_loss_latent", "valid_loss_duration", "valid_duration_error"))
    with pytest.raises(ConfigError, match="valle data align"):
        Trainer(config, shards, tmp_path / "unaligned").fit()


def test_another_utterance_of_the_same_speaker_is_picked_uniformly():
    other = OtherUtterances(["a", "b", "a", "c", "a", "b"])
    generator = torch.Generator().manual_seed(0)
    picks = [other.pick(0, generator) for _ in range(600)]
    assert set(picks) == {2, 4} and 250 < picks.count(2) < 350  # never itself, each other one as often
    assert {other.pick(1, generator) for _ in range(20)} == {5}
    assert other.pick(3, generator) == 3  # a speaker with one utterance: its own is all there is


def test_the_frame_stage_may_read_its_voice_off_another_utterance_of_the_speaker(aligned_shards, tmp_path):
    config = replace(CONFIG, stage="frames", voice_prompt="other", nar_prompt_seconds=10.0)  # whole utterances
    trainer = Trainer(config, aligned_shards, tmp_path / "other")
    corpus = TokenizedCorpus(aligned_shards)
    positions = list(range(len(corpus)))  # every utterance of a length of its own
    _, _, codes, code_lens = collate([corpus[i] for i in positions])
    prompt, prompt_lens, _ = trainer.voice_prompts(positions, codes, code_lens, None)
    for i in positions:
        source = [j for j in positions if torch.equal(corpus[j].codes, prompt[i, :, :int(prompt_lens[i])])]
        assert len(source) == 1 and source[0] != i and corpus[source[0]].speaker == corpus[i].speaker
    trainer.fit()  # and trains on such prompts
    assert Stage.from_pretrained(tmp_path / "other" / "model").kind == "frames"
    Trainer(replace(config, voice_prompt="same"), aligned_shards, tmp_path / "fork").fit(stop_after=2)
    forked = Trainer(config, aligned_shards, tmp_path / "fork")  # a copy of a run, forked into an arm of its own
    forked.fit(resume=True)
    assert forked.step == config.steps and forked.other_utterances is not None
    with pytest.raises(ConfigError, match="voice_prompt 'other' is for the frame stage"):
        replace(CONFIG, voice_prompt="other")


def test_a_frame_stage_trained_on_other_prompts_is_scored_held_out_on_other_prompts(aligned_shards, tmp_path):
    """A stage that attends to its prompt's frames, scored with a slice of its own target, could copy it."""
    config = replace(CONFIG, stage="frames", voice_prompt="other", model={"voice_attention": True})
    trainer = Trainer(config, aligned_shards, tmp_path / "run", valid=aligned_shards)
    corpus = TokenizedCorpus(aligned_shards)
    other = heldout_metrics(trainer.model, corpus, max_tokens=100_000, other_prompts=True)
    assert other == heldout_metrics(trainer.model, corpus, max_tokens=100_000, other_prompts=True)  # a fixed seed
    assert other != heldout_metrics(trainer.model, corpus, max_tokens=100_000)  # other voices: other losses
    assert trainer.validate() == {f"valid_{k}": v for k, v in heldout_metrics(
        trainer.model, corpus, config.max_tokens, config.valid_utterances, config.nar_prompt_seconds, config.seed,
        other_prompts=True).items()}


def test_a_frame_stage_learns_against_an_accent_adversary_from_a_file_of_its_speakers_accents(aligned_shards, tmp_path):
    accents = tmp_path / "accents.json"
    accents.write_text(json.dumps({"s0": "en-029", "s1": "en-gb-x-rp", "elsewhere": "en-us"}))  # s2: none known
    config = replace(CONFIG, stage="frames", voice_prompt="other", accents=str(accents),
                     model={"voice_attention": True, "accent_adversary": 0.5})
    trainer = Trainer(config, aligned_shards, tmp_path / "run")
    assert trainer.model.config.accents == ("en-029", "en-gb-x-rp", "en-us")
    corpus = TokenizedCorpus(aligned_shards)
    items = [corpus[i] for i in range(len(corpus))]
    expected = [{"s0": 0, "s1": 1}.get(u.speaker, -1) for u in items]
    assert speaker_accents(items, trainer.model, trainer.accent_of).tolist() == expected
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    labelled = [r for r in records if "accent_heard" in r]  # the batches with a speaker of known accent
    assert labelled and all(0 <= r["accent_heard"] <= 1 and r["accent"] > 0 for r in labelled)
    assert Stage.from_pretrained(tmp_path / "run" / "model").config.accent_adversary == 0.5
    with pytest.raises(ConfigError, match="accent_adversary"):  # a weight with no file of accents
        Trainer(replace(config, accents=None), aligned_shards, tmp_path / "no_file")
    accents.write_text("{not json")
    with pytest.raises(ConfigError, match="accents: cannot read"):
        Trainer(config, aligned_shards, tmp_path / "bad_file")
    with pytest.raises(ConfigError, match="accents are for the frame stage"):
        replace(CONFIG, accents=str(accents))


def test_a_frame_stage_learns_a_teachers_rendering_of_the_folders_it_teaches_and_the_others_recordings(aligned_shards,
                                                                                                          tmp_path):
    config = replace(CONFIG, stage="frames", steps=1)
    Trainer(replace(config, steps=2), aligned_shards, tmp_path / "teacher").fit()
    teacher = str(tmp_path / "teacher" / "model")
    copy = Path(shutil.copytree(aligned_shards, tmp_path / "copy"))
    taught = replace(config, init=teacher, teacher=teacher, teacher_data=[str(copy)])
    trainer = Trainer(taught, [aligned_shards, copy], tmp_path / "student")
    half = len(TokenizedCorpus(copy))
    assert trainer.taught.tolist() == [False] * half + [True] * half  # the utterances of the folder it teaches
    # A student that starts as its teacher has nothing to learn of what it is taught, and something of the recordings.
    Trainer(taught, [copy], tmp_path / "taught").fit()
    Trainer(replace(taught, teacher=None, teacher_data=[]), [copy], tmp_path / "recorded").fit()
    first = {name: json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
             for name in ("taught", "recorded")}
    assert first["taught"]["latent"] < 1e-6 and first["taught"]["duration"] < 1e-6
    assert first["recorded"]["latent"] > 0.01 and first["recorded"]["duration"] > 0.01
    with pytest.raises(ConfigError, match="teacher_data names .*not one of the training folders"):
        Trainer(taught, [aligned_shards], tmp_path / "elsewhere")
    corpus = TokenizedCorpus(copy)
    ar = ARModel(preset("tiny", n_phonemes=len(corpus.vocab), n_codebooks=corpus.codec.n_codebooks,
                        codebook_size=corpus.codec.codebook_size))
    ar.save_pretrained(tmp_path / "ar", TrainedOn(corpus.vocab, corpus.codec))
    with pytest.raises(ConfigError, match="stage of kind 'ar'; a teacher is a frame stage"):
        Trainer(replace(taught, teacher=str(tmp_path / "ar")), [aligned_shards, copy], tmp_path / "ar_taught")
    with pytest.raises(ConfigError, match="give both"):
        replace(taught, teacher_data=[])
    with pytest.raises(ConfigError, match="teaches a frame stage"):
        replace(CONFIG, teacher=teacher, teacher_data=[str(copy)])


def test_a_frame_stage_told_the_pitch_trains_on_the_tracks_and_scores_it_held_out(pitched_shards, aligned_shards, tmp_path,
                                                                                 capsys):
    corpus = TokenizedCorpus(pitched_shards)
    for i in range(len(corpus)):  # the test recordings are a voice gliding about 120 Hz
        pitch = corpus[i].pitch
        assert len(pitch) == corpus[i].codes.shape[1] and 90 < pitch[pitch > 0].median() < 150
    config = replace(CONFIG, stage="frames", model={"pitch": True, "code_loss": 0.01})
    Trainer(config, pitched_shards, tmp_path / "run", valid=pitched_shards).fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"pitch", "code"} <= records[0].keys()
    assert math.isfinite(records[-1]["valid_loss_pitch"]) and records[-1]["valid_loss_code"] > 0
    assert Stage.from_pretrained(tmp_path / "run" / "model").config.pitch
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "run" / "model"), "--data", str(pitched_shards)]) == 0
    printed = capsys.readouterr().out
    assert "pitch loss" in printed and "codes right by level" in printed and "top-10" not in printed
    with pytest.raises(ConfigError, match="valle data pitch"):
        Trainer(config, aligned_shards, tmp_path / "untracked").fit()
    (pitched_shards / "pitch.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CorpusError, match="run `valle data pitch` again"):
        TokenizedCorpus(pitched_shards)


def test_pitch_tracks_need_the_recordings_the_folder_was_tokenised_from(shards, tmp_path):
    folder = Path(shutil.copytree(shards, tmp_path / "shards"))
    with pytest.raises(CorpusError, match="has no row for 12"):
        track_corpus(folder, manifest=_manifest_of_other_ids(tmp_path))
    with pytest.raises(CorpusError, match="give the manifest"):
        track_corpus(folder, manifest=tmp_path / "gone.jsonl")
    assert main(["data", "pitch", str(folder), str(folder), "--manifest", str(tmp_path / "gone.jsonl")]) == 2


def _manifest_of_other_ids(tmp_path: Path) -> Path:
    write_manifest([Utterance("other", tmp_path / "x.wav", "Hello.", "s0", duration=1.0)], tmp_path / "other.jsonl")
    return tmp_path / "other.jsonl"


def test_the_frame_aligner_finds_the_true_alignment_from_a_flat_start():
    """Codes that say their phoneme through noise, with uneven durations: Viterbi training recovers the durations."""
    generator = torch.Generator().manual_seed(0)
    vocab_size, silent = 12, torch.zeros(12, dtype=torch.bool)
    silent[0] = True  # a word gap: may take no frame
    utterances, truths = [], []
    for i in range(40):
        phonemes = torch.randperm(vocab_size - 1, generator=generator)[:6] + 1  # no phoneme twice in a row
        phonemes[3] = 0
        durations = torch.randint(1, 9, (6,), generator=generator)
        durations[3] = 0
        truth = torch.arange(6).repeat_interleave(durations)
        codes = torch.randint(0, 16, (2, len(truth)), generator=generator)
        codes[0] = torch.where(torch.rand(len(truth), generator=generator) < 0.8, phonemes[truth], codes[0])
        utterances.append(TokenizedUtterance(f"u{i}", "s", "", "en-us", 1.0, phonemes, codes))
        truths.append(truth)
    sizes = AlignerConfig(n_phonemes=vocab_size, n_codebooks=2, codebook_size=16, channels=32, layers=1, kernel=3)
    aligner = fit_aligner(utterances, silent, sizes, AlignerTraining(rounds=3, epochs=8, batch_size=8, learning_rate=5e-3))
    paths = [aligner.path(u.phonemes, u.codes, silent[u.phonemes]) for u in utterances]
    flat = [flat_start(u, silent[u.phonemes]) for u in utterances]
    right = float(torch.cat([p == t for p, t in zip(paths, truths)]).float().mean())
    right_flat = float(torch.cat([p == t for p, t in zip(flat, truths)]).float().mean())
    assert right > 0.9 and right > right_flat + 0.2


def test_a_word_starts_where_its_first_sounding_phoneme_does():
    vocab = PhonemeVocab()
    ids = [vocab.tokens.index(t) for t in ("ˈ", "h", "aɪ", "_", "ˈ", "ð", "ɛ", "_", "aʊ", ".")]  # stress marks are silent
    alignment = torch.tensor([1, 1, 2, 2, 4, 5, 5, 6, 6, 6, 8, 8])  # the second word's stress mark took frame 4
    utterance = TokenizedUtterance("u", "s", "", "en-us", 1.0, torch.tensor(ids), torch.zeros(1, 12, dtype=torch.long), alignment)
    assert word_starts(utterance, vocab) == [0, 5, 10]
    assert word_starts(replace(utterance, alignment=alignment.clamp(max=6)), vocab) == [0, 5, None]  # the last word lost


def test_without_an_aligner_a_folder_is_aligned_by_the_one_that_ships_for_its_codec(shards, tmp_path, monkeypatch):
    folder = Path(shutil.copytree(shards, tmp_path / "shards"))
    monkeypatch.setattr(valle.train.align, "SHIPPED", tmp_path / "shipped")
    with pytest.raises(ConfigError, match="no aligner ships for the codes of .*valle data train-aligner"):
        align_corpus(folder)
    sizes, training = AlignerConfig(channels=16, layers=1, kernel=3), AlignerTraining(rounds=1, epochs=1, batch_size=4)
    train_aligner([folder], tmp_path / "shipped" / "aligner-other", training, sizes)
    other = json.loads((tmp_path / "shipped" / "aligner-other" / "config.json").read_text())
    other["codec"]["weights_sha256"] = "f" * 64  # an aligner of other codec weights: never chosen
    (tmp_path / "shipped" / "aligner-other" / "config.json").write_text(json.dumps(other))
    own = train_aligner([folder], tmp_path / "shipped" / "aligner-own", training, sizes)
    by_default = align_corpus(folder).read_bytes()
    assert by_default == align_corpus(folder, own).read_bytes()


def test_a_corpus_aligned_by_a_trained_aligner_trains_a_stage_with_a_phoneme_pointer(shards, tmp_path):
    folder = Path(shutil.copytree(shards, tmp_path / "shards"))
    training = AlignerTraining(rounds=2, epochs=1, batch_size=4)
    aligner = train_aligner([folder], tmp_path / "aligner", training, AlignerConfig(channels=16, layers=1, kernel=3))
    with pytest.raises(ConfigError, match="holds no phoneme aligner"):
        align_corpus(folder, shards / "../codec")
    with pytest.raises(ConfigError, match="valle data train-aligner"):
        align_corpus(folder, tmp_path / "nothing here")
    pointed = replace(CONFIG, model={"phoneme_pointer": True})
    with pytest.raises(ConfigError, match="valle data align"):
        Trainer(pointed, folder, tmp_path / "unaligned").fit()
    alone = align_corpus(folder, aligner).read_bytes()
    assert align_corpus(folder, aligner, workers=2).read_bytes() == alone
    aligned = TokenizedCorpus(folder)
    for i in range(len(aligned)):
        u = aligned[i]
        steps = torch.diff(u.alignment)
        assert len(u.alignment) == u.codes.shape[1] and (steps >= 0).all() and (steps <= 3).all()
        assert u.alignment[0] <= 1 and u.alignment[-1] >= len(u.phonemes) - 2
    Trainer(pointed, folder, tmp_path / "run", valid=folder).fit()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "accuracy_advance" in metrics[0] and "valid_loss_advance" in metrics[-1]
    assert math.isfinite(metrics[-1]["valid_text_gain_onsets"])  # the text's worth where a phoneme starts
    (folder / "alignments.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CorpusError, match="run `valle data align` again"):
        TokenizedCorpus(folder)
    write_alignments(folder, [torch.zeros(3, dtype=torch.long)], source="another tokenisation")
    with pytest.raises(CorpusError, match="does not fit the utterances"):
        TokenizedCorpus(folder)
