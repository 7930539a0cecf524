"""What ships in the package: the voice prompts, the default model and the aligner of the bundled codec."""

import functools

import numpy as np
import pytest
import soundfile as sf

from valle.audio import load_prompt
from valle.data.manifest import Utterance, write_manifest
from valle.data.shards import TokenizedCorpus
from valle.data.synthetic.engines import engine
from valle.data.tokenize import tokenize_manifest
from valle.infer.bundled import bundled_prompts, resolve_prompt
from valle.train.align import align_corpus, word_starts


def test_bundled_prompts_are_short_clean_recordings_with_transcripts():
    prompts = bundled_prompts()
    assert len(prompts) >= 4 and {p.speaker[:2] for p in prompts.values()} == {"fl", "es"}  # both engines
    for prompt in prompts.values():
        info = sf.info(prompt.path)
        assert info.samplerate == 16000 and info.channels == 1 and 2.5 <= info.duration <= 4.0
        assert load_prompt(prompt.path, 16000).size and len(prompt.text.split()) >= 4


def test_a_prompt_name_brings_its_transcript_and_a_path_is_left_alone(tmp_path):
    name, prompt = next(iter(bundled_prompts().items()))
    assert resolve_prompt(name, None) == (prompt.path, prompt.text)
    assert resolve_prompt(name, "my own words") == (prompt.path, "my own words")
    (tmp_path / name).write_bytes(b"")  # a file of that name wins over the bundled prompt
    assert resolve_prompt(tmp_path / name, None) == (tmp_path / name, None)


def test_cli_lists_the_prompts(capsys):
    from valle.cli import main

    assert main(["prompts"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed and p.text in printed for name, p in bundled_prompts().items())


@pytest.mark.parametrize("voice", ["fl000", "fl001", "esp001", "esp003", "esp007"])
def test_the_bundled_model_speaks_in_the_voice_it_is_given(voice):
    """Five bundled voices (flite slt and rms, three espeak-ng voices): an output is nearest its own prompt. (Without
    its map toward the prompt, `esp001`, espeak-ng's 208 Hz voice, came out an octave low and nearest another; with
    it, still an octave low, it is nearest its own: README.)"""
    import numpy as np

    from valle.speaker import SpeakerEncoder, cosine
    from valle.watermark import detect

    valle, encoder, prompts = _bundled(), SpeakerEncoder(), bundled_prompts()
    assert voice in prompts
    prompt_vectors = {v: encoder.embed(load_prompt(p.path, 16000), 16000) for v, p in prompts.items()}
    out = valle.synthesize("Bring the blue box inside before it rains.", voice, seed=0)
    assert 1.0 < out.seconds < 6.0 and np.isfinite(out.samples).all() and detect(out.samples, out.sample_rate).marked
    vector = encoder.embed(out.samples, out.sample_rate)
    nearest = max(prompts, key=lambda v: cosine(vector, prompt_vectors[v]))
    assert nearest == voice


@functools.cache
def _bundled():
    from valle.infer import VallE

    return VallE.from_pretrained("default")


def test_the_shipped_aligner_finds_where_espeak_ng_starts_its_words(tmp_path):
    """Without --aligner, folders of the bundled codec are aligned by the aligner that ships for it; espeak-ng says
    where it started each word, and the first sounding phoneme of each word should start there."""
    espeak, rows, truth = engine("espeak"), [], {}
    for i, (text, voice) in enumerate([("Please check each name on the list before you leave.", "en-us+m3"),
                                       ("The noise of the engine woke everyone in the house.", "en+f2"),
                                       ("We walked along the river until the sun went down.", "en-gb-x-rp+f4")]):
        samples, starts = espeak.speak_timed(text, voice, 50, 50, 170)
        sf.write(tmp_path / f"u{i}.wav", samples, espeak.sample_rate)
        rows.append(Utterance(f"u{i}", tmp_path / f"u{i}.wav", text, "s", duration=len(samples) / espeak.sample_rate))
        truth[f"u{i}"] = starts
    write_manifest(rows, tmp_path / "texts.jsonl")
    folder = tokenize_manifest(tmp_path / "texts.jsonl", "compact", tmp_path / "tokens", workers=1)
    align_corpus(folder)
    corpus, errors = TokenizedCorpus(folder), []
    for i in range(len(corpus)):
        utterance = corpus[i]
        starts = word_starts(utterance, corpus.vocab)
        assert len(starts) == len(truth[utterance.id]) and None not in starts
        errors += [abs(frame / corpus.codec.frame_rate - true) for frame, true in zip(starts[1:], truth[utterance.id][1:])]
    assert np.mean(np.array(errors) <= 0.1) >= 0.8 and np.median(errors) <= 0.05, errors
