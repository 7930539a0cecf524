"""Streaming synthesis with tiny random models: the same codes as whole synthesis, chunk schedule, joins, watermark."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import speechlike

from valle.audio import WavStreamWriter
from valle.errors import ConfigError
from valle.infer import VallE
from valle.infer.pipeline import SynthesisRequest
from valle.infer.stream import BatchSteps, JobStream, StreamConfig
from valle.model import ARModel, NARModel
from valle.model.sampling import SamplingConfig
from valle.watermark import detect

PROMPT_TEXT = "a voice speaking for three seconds"
TEXT = "Streaming starts early. It goes on."


@pytest.fixture(scope="module", params=[(1, 1), (2, 2)], ids=["paper layout", "two AR levels in groups of 2"])
def valle(model_dir, request) -> VallE:
    base = VallE.from_pretrained(model_dir)
    group_size, ar_levels = request.param
    torch.manual_seed(0)
    config = replace(base.ar.config, group_size=group_size, ar_levels=ar_levels)
    return VallE(ARModel(config), NARModel(config), base.codec, base.tokenizer.vocab, base.codec_name)


@pytest.fixture(scope="module")
def prompt() -> np.ndarray:
    return speechlike(3.0, 16000)


@pytest.fixture(scope="module")
def bundled() -> VallE:
    return VallE.from_pretrained("paper")


def test_streaming_chooses_the_codes_of_whole_synthesis(valle, prompt):
    jobs, _ = valle.plan(SynthesisRequest(TEXT, prompt, PROMPT_TEXT, seed=7), SamplingConfig())
    streamed = []
    for job in jobs:
        stream = JobStream(valle, job, StreamConfig(first_frames=3, max_frames=8))
        list(stream.chunks())
        streamed.append(stream.lower)
    again, _ = valle.plan(SynthesisRequest(TEXT, prompt, PROMPT_TEXT, seed=7), SamplingConfig())
    whole = valle.ar.generate_batch(**valle.ar_requests(again))
    assert [s.tolist() for s in streamed] == [w.tolist() for w in whole]


def test_sentences_stream_from_the_batches_of_whole_synthesis_with_its_codes_even_in_bfloat16(valle, prompt):
    """Batched as whole synthesis batches them, the sentences get its very codes even where rounding differs with the
    batch (bfloat16); a later sentence, made while the first streamed, is decoded in one go."""
    half = VallE(copy.deepcopy(valle.ar).to(torch.bfloat16), copy.deepcopy(valle.nar).to(torch.bfloat16), valle.codec,
                 valle.tokenizer.vocab, valle.codec_name)
    text = "Streaming starts early. It goes on. And on, to a third sentence."
    jobs, _ = half.plan(SynthesisRequest(text, prompt, PROMPT_TEXT, seed=11), SamplingConfig())
    config = StreamConfig(first_frames=3, max_frames=8, lookahead=2, context=4)
    steps = BatchSteps(half, jobs)
    streams = [JobStream(half, job, config, steps, i) for i, job in enumerate(jobs)]
    first = [chunk for chunk, _ in streams[0].chunks()]
    waiting, finished = sum(frames.shape[1] for frames in steps.waiting[1]), steps.finished[1]
    later = [chunk for chunk, _ in streams[1].chunks()]
    list(streams[2].chunks())
    again, _ = half.plan(SynthesisRequest(text, prompt, PROMPT_TEXT, seed=11), SamplingConfig())
    whole = half.ar.generate_batch(**half.ar_requests(again))
    assert [s.lower.tolist() for s in streams] == [w.tolist() for w in whole]
    hop = 16000 // 50
    assert len(first[0]) == 3 * hop
    assert waiting == streams[1].lower.shape[1] if finished else waiting >= streams[0].lower.shape[1] - 1  # made beside it
    assert len(later[0]) == (waiting if finished else max(3, waiting - 2)) * hop


def test_the_bundled_paper_layout_model_streams_the_codes_of_whole_synthesis_in_bfloat16():
    """In bfloat16 a sentence decoded alone and in a batch choose different codes (rounding differs with the batch);
    streamed in whole synthesis's batches, they are the same, with the model's own sampling (guidance on the voice)."""
    half = VallE.from_pretrained("paper", dtype="bfloat16")
    request = SynthesisRequest("Joins that nobody hears. A second sentence follows it.", "fl001", None, seed=0)
    jobs, _ = half.plan(request, half.sampling)
    steps = BatchSteps(half, jobs)
    streams = [JobStream(half, job, StreamConfig(), steps, i) for i, job in enumerate(jobs)]
    for stream in streams:
        list(stream.chunks())
    again, _ = half.plan(request, half.sampling)
    whole = half.ar.generate_batch(**half.ar_requests(again))
    alone = [half.ar.generate_batch(**half.ar_requests([j]))[0] for j in half.plan(request, half.sampling)[0]]
    assert [s.lower.tolist() for s in streams] == [w.tolist() for w in whole]
    assert [a.tolist() for a in alone] != [w.tolist() for w in whole]  # what streaming each sentence alone chose before


def test_chunks_start_small_grow_as_long_as_all_before_and_add_up_to_whole_synthesis(valle, prompt):
    config = StreamConfig(first_frames=3, max_frames=12, lookahead=2, context=4)
    chunks = list(valle.stream(TEXT, prompt, PROMPT_TEXT, seed=3, watermark=False, config=config))
    whole = valle.synthesize(TEXT, prompt, PROMPT_TEXT, seed=3, watermark=False)
    hop = 16000 // 50
    assert [len(c) // hop for c in chunks[:3]] == [3, 3, 6]  # the first sentence's first chunks
    assert sum(map(len, chunks)) == len(whole.samples)  # same frames, same pauses
    assert all(c.dtype == np.float32 and np.isfinite(c).all() for c in chunks)
    pause = next(c for c in chunks if len(c) and not c.any())  # the pause between the two sentences
    assert len(pause) == int(0.15 * 16000)


def test_chunks_join_into_the_decode_of_the_codes_they_settled(bundled):
    """With look-ahead and context covering the codec decoder's reach, windows and fades change nothing.

    A trained model: a random one fills in the same upper levels whatever window it sees.
    """
    jobs, _ = bundled.plan(SynthesisRequest("Joins that nobody hears.", "fl001", None, seed=5), SamplingConfig())
    stream = JobStream(bundled, jobs[0], StreamConfig(first_frames=4, max_frames=16, lookahead=32, context=32, overlap=2))
    streamed = np.concatenate([chunk for chunk, _ in stream.chunks()])
    with torch.inference_mode():
        whole = bundled.codec.decode(stream.settled[None])[0].float().numpy()
    assert stream.settled.shape[1] == stream.lower.shape[1] and len(streamed) == len(whole)
    assert np.abs(streamed - whole).max() <= 1e-3 * np.abs(whole).max()


def test_streamed_audio_carries_the_watermark(bundled):  # speech the mark can hide in (a random model's is near silence)
    text, config = "A sentence for the mark, long enough to hold it.", StreamConfig(first_frames=4, max_frames=16)
    chunks = list(bundled.stream(text, "fl001", seed=1, config=config))
    assert len(chunks) > 4 and detect(np.concatenate(chunks), 16000).marked
    assert not detect(np.concatenate(list(bundled.stream(text, "fl001", seed=1, watermark=False, config=config))), 16000).marked


def test_continuation_streams_the_prompt_first(valle, prompt):
    text = f"{PROMPT_TEXT} and then a little more"
    chunks = list(valle.stream(text, prompt, seed=2, continuation=True, watermark=False, config=StreamConfig(first_frames=5)))
    whole = valle.synthesize(text, prompt, seed=2, continuation=True, watermark=False)
    assert sum(map(len, chunks)) == len(whole.samples)
    assert len(chunks[0]) == 5 * 320  # available at once: the prompt's own frames


def test_stream_settings_are_checked():
    with pytest.raises(ConfigError, match="first_frames <= max_frames"):
        StreamConfig(first_frames=20, max_frames=10)
    with pytest.raises(ConfigError, match="lookahead >= 1"):
        StreamConfig(lookahead=0, overlap=0)


def test_cli_streams_to_a_file_that_is_valid_after_every_chunk(tmp_path, capsys, monkeypatch):
    import soundfile as sf

    from valle.audio import read_comment
    from valle.cli import main

    sizes = []
    original = WavStreamWriter.write

    def write_and_check(self, samples):  # after each chunk the file on disk is a complete WAV
        original(self, samples)
        sizes.append(sf.info(str(tmp_path / "s.wav")).frames)

    monkeypatch.setattr(WavStreamWriter, "write", write_and_check)
    assert main(["synthesize", "First part. Then the second.", "--prompt", "fl001", "--stream", "-o", str(tmp_path / "s.wav"),
                 "--seed", "1", "--model", "paper"]) == 0  # an AR stage: chunks within each sentence
    assert "first audio after" in capsys.readouterr().out
    assert len(sizes) > 3 and sizes == sorted(sizes) and sizes[-1] == sf.info(str(tmp_path / "s.wav")).frames
    assert read_comment(tmp_path / "s.wav") == "synthetic speech generated by valle"


def test_cli_streams_a_wav_to_standard_output():
    import io
    import subprocess
    import sys

    import soundfile as sf

    result = subprocess.run([sys.executable, "-m", "valle.cli", "synthesize", "Hello there.", "--prompt", "fl001", "--stream",
                             "-o", "-", "--seed", "2"], capture_output=True, check=True)
    assert result.stdout[:4] == b"RIFF" and result.stdout[4:8] == b"\xff\xff\xff\xff"  # an open length: a stream
    samples, rate = sf.read(io.BytesIO(result.stdout))
    assert rate == 16000 and len(samples) >= 3200
    assert b"first audio after" in result.stderr
