"""What ships in the package: the voice prompts and the default model."""

import soundfile as sf

from valle.audio import load_prompt
from valle.infer.bundled import bundled_prompts, resolve_prompt


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


def test_the_bundled_model_speaks_in_the_voice_it_is_given():
    """Two very different bundled voices (flite slt and rms): each output is nearest its own prompt."""
    import numpy as np

    from valle.infer import VallE
    from valle.speaker import SpeakerEncoder, cosine
    from valle.watermark import detect

    valle, encoder, prompts = VallE.from_pretrained("default"), SpeakerEncoder(), bundled_prompts()
    voices = ("fl000", "fl001")
    prompt_vectors = {v: encoder.embed(load_prompt(prompts[v].path, 16000), 16000) for v in voices}
    for voice in voices:
        out = valle.synthesize("Bring the blue box inside before it rains.", voice, seed=0)
        assert 1.0 < out.seconds < 6.0 and np.isfinite(out.samples).all() and detect(out.samples, out.sample_rate).marked
        vector = encoder.embed(out.samples, out.sample_rate)
        other = next(v for v in voices if v != voice)
        assert cosine(vector, prompt_vectors[voice]) > cosine(vector, prompt_vectors[other])
