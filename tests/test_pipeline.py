"""The synthesis pipeline with tiny random models: bounds, joins, seeds, persistence, bad input."""

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import speechlike

from valle.asr import word_error_rate
from valle.errors import AudioError, ConfigError, TextError
from valle.infer import VallE
from valle.infer.pipeline import SynthesisRequest, join_with_pauses
from valle.model import FrameModel, TrainedOn
from valle.model.aligner import AlignerConfig, FrameAligner
from valle.model.sampling import SamplingConfig
from valle.pitch import track_pitch
from valle.text import PhonemeVocab

PROMPT_TEXT = "a voice speaking for three seconds"


@pytest.fixture(scope="module")
def valle(model_dir) -> VallE:
    return VallE.from_pretrained(model_dir)


@pytest.fixture
def prompt(write_wav):
    return write_wav("prompt.wav", speechlike(3.0, 16000))


def test_synthesis_returns_audio_within_the_length_bounds(valle, prompt):
    out = valle.synthesize("Hello there.", prompt, PROMPT_TEXT, seed=0)
    assert out.sample_rate == 16000 and out.samples.dtype == np.float32 and np.isfinite(out.samples).all()
    prompt_phonemes, target_phonemes = len(valle.tokenizer(PROMPT_TEXT)), len(valle.tokenizer("Hello there."))
    low, high = valle.length_bounds(150, prompt_phonemes, target_phonemes)
    frames = len(out.samples) / 320
    assert low <= frames <= high


def test_a_model_that_never_stops_is_cut_at_the_cap_and_one_that_stops_at_once_is_held(valle, prompt, monkeypatch):
    eos = valle.ar.eos
    low, high = valle.length_bounds(150, len(valle.tokenizer(PROMPT_TEXT)), len(valle.tokenizer("Go home now.")))
    with torch.no_grad():
        bias = valle.ar.head.bias.clone()
        valle.ar.head.bias[eos] = -1e4  # never emits EOS
        greedy = SamplingConfig(temperature=0)
        never = valle.synthesize("Go home now.", prompt, PROMPT_TEXT, seed=0, sampling=greedy, watermark=False)
        valle.ar.head.bias[eos] = 1e4  # always wants EOS
        eager = valle.synthesize("Go home now.", prompt, PROMPT_TEXT, seed=0, sampling=greedy, watermark=False)
        valle.ar.head.bias.copy_(bias)
    assert len(never.samples) // 320 == high
    assert len(eager.samples) // 320 == low


def test_the_nar_decodes_greedily_or_nearest_to_the_codecs_vectors(valle, prompt, monkeypatch):
    chosen = []
    generate = valle.nar.generate
    monkeypatch.setattr(valle.nar, "generate", lambda *a, **k: chosen.append(k["choose"]) or generate(*a, **k))
    for decoding in ("greedy", "nearest"):
        valle.synthesize("Go home now.", prompt, PROMPT_TEXT, seed=0, sampling=SamplingConfig(nar_decoding=decoding))
    greedy, nearest = chosen
    assert greedy is None and torch.equal(nearest.codebooks, valle.codec.codebooks())


def test_same_seed_same_audio_other_seed_other_audio(valle, prompt):
    a = valle.synthesize("Seeds make it repeatable.", prompt, PROMPT_TEXT, seed=3)
    b = valle.synthesize("Seeds make it repeatable.", prompt, PROMPT_TEXT, seed=3)
    c = valle.synthesize("Seeds make it repeatable.", prompt, PROMPT_TEXT, seed=4)
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)


def test_long_text_is_spoken_sentence_by_sentence_and_joined_smoothly(valle, prompt):
    out = valle.synthesize("First sentence here. Second one follows. And a third.", prompt, PROMPT_TEXT, seed=1, watermark=False)
    silent_runs = np.flatnonzero(np.abs(out.samples) < 1e-7)
    assert len(silent_runs) >= 2 * int(0.15 * 16000) - 10  # two pauses
    pieces = [np.ones(1000, np.float32), np.ones(1000, np.float32)]
    joined = join_with_pauses(pieces, 16000)
    assert len(joined) == 2000 + int(0.15 * 16000)
    assert joined[0] == 0 and np.max(np.abs(np.diff(joined))) < 0.02  # faded: no step at any join


def test_model_folder_round_trip(valle, model_dir, tmp_path):
    again = VallE.from_pretrained(valle.save_pretrained(tmp_path / "copy"))
    for a, b in ((valle.ar, again.ar), (valle.nar, again.nar)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ConfigError, match="valle.json is missing"):
        VallE.from_pretrained(tmp_path)


@pytest.mark.parametrize("text", ["", "   ", "!!! ???"])
def test_text_with_nothing_to_say(valle, prompt, text):
    with pytest.raises(TextError):
        valle.synthesize(text, prompt, PROMPT_TEXT)


def test_ten_thousand_characters_of_text_are_split_and_bounded(valle, prompt, monkeypatch):
    jobs = []
    monkeypatch.setattr(valle, "speak", lambda planned, batch_size=8: jobs.extend(planned) or [np.zeros(10, np.float32)] * len(planned))
    text = "This sentence is one of many in a long text. " * 223
    assert len(text) >= 10000
    valle.synthesize(text, prompt, PROMPT_TEXT)
    one_sentence = valle.plan(SynthesisRequest("This sentence is one of many in a long text.", prompt, PROMPT_TEXT), SamplingConfig())[0]
    assert len(jobs) == 223 and all(job.high == one_sentence[0].high for job in jobs)  # each sentence bounded alone


@pytest.mark.parametrize(("samples", "rate", "options", "outcome"), [
    (np.zeros(48000, np.float32), 16000, {}, "silent"),
    (speechlike(0.5, 16000), 16000, {}, "at least 1 s"),
])
def test_bad_prompts_are_refused_clearly(valle, write_wav, samples, rate, options, outcome):
    with pytest.raises(AudioError, match=outcome):
        valle.synthesize("Hello.", write_wav("bad.wav", samples, rate, **options), PROMPT_TEXT)


def test_stereo_44k1_mp3_prompt_is_accepted(valle, write_wav):
    stereo = np.stack([speechlike(3.0, 44100), speechlike(3.0, 44100, seed=1)], axis=1)
    path = write_wav("p.mp3", stereo, 44100, format="MP3", subtype="MPEG_LAYER_III")
    assert valle.synthesize("Fine.", path, PROMPT_TEXT, seed=0).samples.size > 0
    assert sf.info(path).channels == 2


def test_cli_speaks_and_reports_where_and_how_fast(model_dir, prompt, tmp_path, capsys):
    from valle.cli import main

    out = tmp_path / "hello.wav"
    assert main(["synthesize", "Hello there.", "--prompt", str(prompt), "--prompt-text", PROMPT_TEXT,
                 "--model", str(model_dir), "-o", str(out), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "real-time factor" in printed
    assert sf.info(out).samplerate == 16000
    assert main(["synthesize", "Hello.", "--model", str(model_dir)]) == 2
    assert "--prompt is required" in capsys.readouterr().err
    half = tmp_path / "half.wav"
    assert main(["synthesize", "Hello there.", "--prompt", str(prompt), "--prompt-text", PROMPT_TEXT,
                 "--model", str(model_dir), "-o", str(half), "--dtype", "bfloat16"]) == 0
    assert sf.info(half).frames > 0


def test_batch_from_csv_and_jsonl_resumes(model_dir, prompt, tmp_path, capsys):
    from valle.cli import main

    (tmp_path / "list.csv").write_text(f"text,prompt,prompt_text,out\nOne.,{prompt.name},{PROMPT_TEXT},a.wav\n"
                                       f"Two.,{prompt.name},{PROMPT_TEXT},\n")
    assert main(["synthesize", "--batch", str(tmp_path / "list.csv"), "--model", str(model_dir),
                 "--out-dir", str(tmp_path / "out"), "--seed", "0"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00002.wav", "a.wav"]
    first = (tmp_path / "out" / "a.wav").stat().st_mtime_ns
    main(["synthesize", "--batch", str(tmp_path / "list.csv"), "--model", str(model_dir), "--out-dir", str(tmp_path / "out")])
    assert (tmp_path / "out" / "a.wav").stat().st_mtime_ns == first  # finished outputs are kept
    (tmp_path / "bad.jsonl").write_text('{"text": "no prompt"}\n')
    assert main(["synthesize", "--batch", str(tmp_path / "bad.jsonl"), "--model", str(model_dir)]) == 2
    assert "entry 1 needs a `text` and a `prompt`" in capsys.readouterr().err


def test_every_output_is_watermarked_unless_turned_off(valle, model_dir, prompt, tmp_path, capsys, monkeypatch):
    from valle.audio import read_comment
    from valle.cli import main
    from valle.watermark import detect

    # The tiny random model speaks near-silent noise; speech-like sentences show the wiring.
    monkeypatch.setattr(valle, "speak", lambda jobs, batch_size=8: [speechlike(2.0, 16000, seed=i) for i in range(len(jobs))])
    marked = valle.synthesize("A watermark goes into every output.", prompt, PROMPT_TEXT, seed=2)
    plain = valle.synthesize("A watermark goes into every output.", prompt, PROMPT_TEXT, seed=2, watermark=False)
    assert marked.watermarked and detect(marked.samples, marked.sample_rate).marked
    assert not plain.watermarked and not detect(plain.samples, plain.sample_rate).marked
    out = tmp_path / "x.wav"
    assert main(["synthesize", "Hello.", "--prompt", str(prompt), "--prompt-text", PROMPT_TEXT, "--model",
                 str(model_dir), "-o", str(out), "--no-watermark"]) == 0
    assert "watermark OFF" in capsys.readouterr().err
    assert read_comment(out) == "synthetic speech generated by valle"
    monkeypatch.setattr(valle, "speak", lambda jobs, batch_size=8: [speechlike(0.2, 16000)] * len(jobs))
    assert len(valle.synthesize("Hi.", prompt, PROMPT_TEXT).samples) == 8000  # padded to the watermark's minimum


def test_continuation_returns_the_prompt_then_the_rest_of_the_transcript(valle, prompt, monkeypatch):
    monkeypatch.setattr(valle, "_transcribe", lambda samples: pytest.fail("continuation needs no prompt transcript"))
    text = "a voice speaking for three seconds and then going on a little longer."
    out = valle.synthesize(text, prompt, seed=5, watermark=False, continuation=True)
    prompt_codes = valle.encode_prompt(sf.read(prompt, dtype="float32")[0])
    low, high = valle.continuation_bounds(prompt_codes.shape[1], len(valle.tokenizer(text)))
    assert out.prompt_text is None and low <= len(out.samples) // 320 - prompt_codes.shape[1] <= high
    resynth = valle.codec.decode(prompt_codes[None])[0].numpy()
    head = slice(0, len(resynth) - 3200)  # one piece: away from the seam the decoder sees (nearly) the same codes
    assert np.corrcoef(out.samples[head], resynth[head])[0, 1] > 0.9
    with pytest.raises(TextError, match="continuation takes one passage of at most 600 characters"):
        valle.synthesize("word " * 200, prompt, continuation=True)


def test_stages_join_into_a_half_size_model_folder(model_dir, tmp_path, capsys):
    from valle.cli import main

    assert main(["export", str(model_dir / "ar"), str(model_dir / "nar"), str(tmp_path / "half"), "--half"]) == 0
    assert f"wrote {tmp_path / 'half'}" in capsys.readouterr().out
    full, half = VallE.from_pretrained(model_dir), VallE.from_pretrained(tmp_path / "half")
    assert (tmp_path / "half" / "ar" / "model.safetensors").stat().st_size < 0.6 * (model_dir / "ar" / "model.safetensors").stat().st_size
    for a, b in ((full.ar, half.ar), (full.nar, half.nar)):
        assert all(torch.allclose(x, y, atol=1e-3) and y.dtype == x.dtype for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert half.codec_record == full.codec_record
    with pytest.raises(ConfigError, match="give the AR stage first"):
        VallE.from_stages(model_dir / "nar", model_dir / "ar")
    with pytest.raises(ConfigError, match="no model folder or bundled model named 'nowhere'"):
        VallE.from_pretrained("nowhere")


def test_decoding_sentences_together_changes_nothing(valle, prompt):
    text = "First one. The second is longer than the first. Third."
    alone = valle.synthesize(text, prompt, PROMPT_TEXT, seed=7, watermark=False, batch_size=1)
    together = valle.synthesize(text, prompt, PROMPT_TEXT, seed=7, watermark=False, batch_size=8)
    many = valle.synthesize_many([SynthesisRequest(text, prompt, PROMPT_TEXT, seed=7), SynthesisRequest("Other.", prompt, PROMPT_TEXT)],
                                 watermark=False)
    assert len(alone.samples) == len(together.samples) == len(many[0].samples)
    np.testing.assert_allclose(together.samples, alone.samples, atol=1e-4)
    np.testing.assert_allclose(many[0].samples, alone.samples, atol=1e-4)


def test_bfloat16_weights_speak_and_decode_like_float32(valle, model_dir, prompt):
    half = VallE.from_pretrained(model_dir, dtype="bfloat16")
    assert {p.dtype for p in half.ar.parameters()} == {p.dtype for p in half.nar.parameters()} == {torch.bfloat16}
    out = half.synthesize("Hello there.", prompt, PROMPT_TEXT, seed=0)
    assert out.samples.dtype == np.float32 and np.isfinite(out.samples).all() and len(out.samples) > 0
    # The same teacher-forced step in both precisions: bfloat16 keeps about 3 significant digits.
    config = valle.ar.config
    phonemes, codes = torch.randint(0, config.n_phonemes, (1, 12)), torch.randint(0, config.codebook_size, (1, config.n_codebooks, 30))
    lengths = (torch.tensor([12]), torch.tensor([30]))
    full = valle.ar(phonemes, lengths[0], codes, lengths[1]).logits
    reduced = half.ar(phonemes, lengths[0], codes, lengths[1]).logits.float()
    assert (reduced - full).abs().max() < 0.05 * full.abs().max()


def test_unknown_weight_dtype_is_named():
    with pytest.raises(ConfigError, match="float32, bfloat16, float16 or auto; not int8"):
        VallE.from_pretrained("default", dtype="int8")



def test_an_ar_stage_that_predicts_several_levels_speaks_through_the_same_pipeline(valle, prompt, tmp_path):
    from valle.model import ARModel, NARModel

    torch.manual_seed(0)
    config = replace(valle.ar.config, ar_levels=2, group_size=2, scale_embeddings=True)
    several = VallE(ARModel(config), NARModel(config), valle.codec, valle.tokenizer.vocab, valle.codec_name)
    text = "Two levels at a time. Then the rest."
    out = several.synthesize(text, prompt, PROMPT_TEXT, seed=5, watermark=False)
    assert np.isfinite(out.samples).all() and len(out.samples) > 0
    loaded = VallE.from_pretrained(several.save_pretrained(tmp_path / "several"))
    assert loaded.ar.config.ar_levels == 2 and loaded.nar.first_level == 2
    again = loaded.synthesize(text, prompt, PROMPT_TEXT, seed=5, watermark=False, batch_size=1)
    np.testing.assert_allclose(again.samples, out.samples, atol=1e-5)  # saved, loaded and decoded one by one


def test_a_prompt_without_transcript_is_recognised_offline(valle, caplog):
    from valle.data.synthetic.voices import design_voices, render

    said = "Please check each name on the list."
    voice = next(v for v in design_voices(4, 4, seed=0) if v.speaker == "fl001")
    out = valle.synthesize("Hello there.", render(voice, said, 16000), seed=0, watermark=False)
    assert word_error_rate([said], [out.prompt_text]) <= 0.2, out.prompt_text
    assert "recognised it offline" in caplog.text


def test_a_model_with_languages_speaks_each_requests_own_and_refuses_others(valle, polyglot_dir, prompt):
    """VALL-E X: the prompt's words carry the prompt's language, the text the text's; a batch may mix them."""
    from valle.model import NARModel

    polyglot = VallE.from_pretrained(polyglot_dir)
    assert polyglot.ar.config.languages == polyglot.nar.config.languages == ("en-us", "es", "fr-fr")
    jobs, _ = polyglot.plan(SynthesisRequest("Hola, amigos.", prompt, PROMPT_TEXT, language="es", prompt_language="en-us"),
                            SamplingConfig())
    n_prompt = len(polyglot.tokenizer(PROMPT_TEXT, "en-us"))
    assert jobs[0].languages.tolist() == [0] * n_prompt + [1] * (len(jobs[0].phonemes) - n_prompt)
    detected, _ = polyglot.plan(SynthesisRequest("Hola, amigos.", prompt, PROMPT_TEXT, language="es"), SamplingConfig())
    assert detected[0].languages.tolist() == jobs[0].languages.tolist()  # not said: its English words read as English
    french = "Le groupe est créé sans aucun membre."
    said, _ = polyglot.plan(SynthesisRequest("Hola, amigos.", prompt, french, language="es"), SamplingConfig())
    n_french = len(polyglot.tokenizer(french, "fr-fr"))
    assert said[0].languages.tolist() == [2] * n_french + [1] * (len(said[0].phonemes) - n_french)
    unsure, _ = polyglot.plan(SynthesisRequest("Hola, amigos.", prompt, "ok", language="es"), SamplingConfig())
    assert set(unsure[0].languages.tolist()) == {1}  # a word or two tells nothing: the text's language
    requests = [SynthesisRequest("Bonjour à tous.", prompt, PROMPT_TEXT, seed=3, language="fr-fr", prompt_language="en-us"),
                SynthesisRequest("Good morning.", prompt, PROMPT_TEXT, seed=4)]
    together = polyglot.synthesize_many(requests, watermark=False)
    alone = [polyglot.synthesize(r.text, prompt, PROMPT_TEXT, seed=r.seed, language=r.language,
                                 prompt_language=r.prompt_language, watermark=False) for r in requests]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.samples, b.samples, atol=1e-4)
    with pytest.raises(ConfigError, match="not trained on language 'de'; it knows en-us, es, fr-fr"):
        polyglot.synthesize("Guten Tag.", prompt, PROMPT_TEXT, language="de")
    with pytest.raises(ConfigError, match="languages .*'es'.* and the NAR stage on \\[\\]; pair stages of one training"):
        VallE(polyglot.ar, NARModel(valle.nar.config), valle.codec, valle.tokenizer.vocab, valle.codec_name)


def test_cli_speaks_the_language_asked_for_alone_and_in_batches(polyglot_dir, prompt, tmp_path, capsys):
    from valle.cli import main

    spanish = ["synthesize", "Hola, amigos.", "--prompt", str(prompt), "--prompt-text", PROMPT_TEXT, "--model", str(polyglot_dir),
               "--language", "es", "--prompt-language", "en-us", "--seed", "3", "--no-watermark"]
    assert main([*spanish, "-o", str(tmp_path / "es.wav")]) == 0
    assert main([*spanish, "-o", str(tmp_path / "es_streamed.wav"), "--stream"]) == 0
    assert main([*spanish[:-7], "--language", "de", "-o", str(tmp_path / "de.wav")]) == 2
    assert "not trained on language 'de'; it knows en-us, es, fr-fr" in capsys.readouterr().err
    rows = [{"text": "Hola, amigos.", "prompt": prompt.name, "prompt_text": PROMPT_TEXT, "out": "es.wav", "language": "es",
             "prompt_language": "en-us"}, {"text": "Good morning.", "prompt": prompt.name, "prompt_text": PROMPT_TEXT, "out": "en.wav"}]
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["synthesize", "--batch", str(tmp_path / "list.jsonl"), "--model", str(polyglot_dir), "--out-dir",
                 str(tmp_path / "out"), "--seed", "3", "--no-watermark"]) == 0
    np.testing.assert_allclose(sf.read(tmp_path / "out" / "es.wav")[0], sf.read(tmp_path / "es.wav")[0], atol=1e-4)


def test_the_latest_prompts_are_encoded_once(valle, monkeypatch):
    from valle.infer import pipeline

    encoded = []
    encode = valle.codec.encode
    monkeypatch.setattr(valle.codec, "encode", lambda audio: encoded.append(len(audio[0])) or encode(audio))
    monkeypatch.setattr(pipeline, "PROMPT_CACHE", 2)
    prompts = [speechlike(1.0 + i / 10, 16000, seed=i) for i in range(3)]
    first = valle.encode_prompt(prompts[0])
    assert valle.encode_prompt(prompts[0].copy()) is first and len(encoded) == 1  # the same samples: no encoding
    valle.encode_prompt(prompts[1])
    valle.encode_prompt(prompts[0])  # the newest again
    valle.encode_prompt(prompts[2])  # prompts[1], the oldest, leaves
    assert len(encoded) == 3 and valle.encode_prompt(prompts[0]) is first
    assert torch.equal(valle.encode_prompt(prompts[1]), encode(torch.from_numpy(prompts[1])[None])[0]) and len(encoded) == 4


def test_resynthesis_is_a_recording_through_the_codecs_codes_and_back(valle):
    recording = speechlike(1.3, 16000, seed=4)
    codes = valle.codec.encode(torch.from_numpy(recording)[None])
    again = valle.resynthesize(recording)
    assert again.dtype == np.float32 and abs(len(again) - len(recording)) < 320  # within one frame
    assert np.allclose(again, valle.codec.decode(codes)[0].numpy(), atol=1e-5)
    assert not np.allclose(again[: len(recording)], recording[: len(again)], atol=1e-3)  # the codec keeps only so much


def test_an_ar_stage_with_a_phoneme_pointer_starts_it_at_each_sentences_first_phoneme(valle, prompt, tmp_path,
                                                                                      monkeypatch):
    from valle.model import ARModel, NARModel

    torch.manual_seed(0)
    ar = ARModel(replace(valle.ar.config, ar_levels=2, group_size=2, phoneme_pointer=True))
    torch.nn.init.normal_(ar.pointer_projection.weight, std=0.5)
    pointed = VallE(ar, NARModel(replace(valle.nar.config, ar_levels=2)), valle.codec, valle.tokenizer.vocab,
                    valle.codec_name)
    starts = []
    decode_steps = ARModel.decode_steps

    def spy(self, *args, **kwargs):
        starts.append(args[6])
        return decode_steps(self, *args, **kwargs)

    monkeypatch.setattr(ARModel, "decode_steps", spy)
    text = "Told where it is. Then the rest."
    out = pointed.synthesize(text, prompt, PROMPT_TEXT, seed=5, watermark=False)
    assert np.isfinite(out.samples).all() and len(out.samples) > 0
    assert starts == [[len(valle.tokenizer(PROMPT_TEXT))] * 2]
    loaded = VallE.from_pretrained(pointed.save_pretrained(tmp_path / "pointed"))
    assert loaded.ar.config.phoneme_pointer
    again = loaded.synthesize(text, prompt, PROMPT_TEXT, seed=5, watermark=False, batch_size=1)
    np.testing.assert_allclose(again.samples, out.samples, atol=1e-5)  # the pointer moves alike one by one


@pytest.fixture(scope="module")
def frame_model(valle) -> VallE:
    """`valle`'s codec and vocabulary with a tiny random frame stage in place of the AR and NAR stages."""
    torch.manual_seed(0)
    codebooks = valle.codec.codebooks()
    config = replace(valle.ar.config, latent_dim=codebooks.shape[2])
    frames = FrameModel(config)
    frames.use_codebooks(codebooks)
    with torch.no_grad():
        frames.duration_head.bias.fill_(1.5)  # about three frames a phoneme, as a trained one would give
    return VallE(None, None, valle.codec, valle.tokenizer.vocab, valle.codec_name, frames=frames)


def test_a_frame_stage_speaks_every_sentence_without_a_transcript_of_the_prompt(frame_model, prompt, monkeypatch, tmp_path):
    monkeypatch.setattr(frame_model, "_transcribe", lambda samples: pytest.fail("the frame stage needs no prompt transcript"))
    text = "One sentence here. And a second, longer one after it."
    out = frame_model.synthesize(text, prompt, seed=1)
    jobs, _ = frame_model.plan(SynthesisRequest(text, prompt), SamplingConfig())
    frames = [frame_model.render(job).shape[1] for job in jobs]
    assert len(jobs) == 2 and all(f >= len(job.phonemes) // 2 for f, job in zip(frames, jobs))
    hop = frame_model.codec.sample_rate // round(frame_model.codec.frame_rate)
    assert out.seconds * frame_model.codec.sample_rate >= sum(frames) * hop and out.watermarked
    assert np.array_equal(frame_model.synthesize(text, prompt, seed=2).samples, out.samples)  # nothing is sampled
    streamed = np.concatenate(list(frame_model.stream(text, prompt, watermark=False)))
    np.testing.assert_allclose(streamed, frame_model.synthesize(text, prompt, watermark=False).samples, atol=1e-5)
    loaded = VallE.from_pretrained(frame_model.save_pretrained(tmp_path / "model"))
    assert isinstance(loaded.frames, FrameModel) and loaded.ar is None
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["frames", "valle.json"]
    np.testing.assert_allclose(loaded.synthesize(text, prompt).samples, out.samples, atol=1e-5)
    with pytest.raises(ConfigError, match="does not continue the prompt's own words"):
        frame_model.synthesize(text, prompt, continuation=True)
    with pytest.raises(ConfigError, match="an AR and a NAR stage, or a frame stage alone"):
        VallE(frame_model.frames, None, frame_model.codec, frame_model.tokenizer.vocab, frame_model.codec_name)


def test_a_frame_stage_maps_its_frames_as_its_rendering_of_the_prompts_own_words_maps_onto_the_prompt(
        frame_model, prompt, monkeypatch, tmp_path):
    import valle.train.align

    monkeypatch.setattr(valle.train.align, "SHIPPED", tmp_path / "shipped")
    monkeypatch.setattr(frame_model, "_aligner", None)  # the fixture's model outlives this test: nothing of it kept
    monkeypatch.setattr(frame_model, "_transcribe", lambda samples: pytest.fail("the map recognises no transcript"))
    text, asked = "Said in the prompt's voice.", SamplingConfig(prompt_map=0.1)
    with pytest.raises(ConfigError, match="prompt_map needs a phoneme aligner for the codes of"):
        frame_model.plan(SynthesisRequest(text, prompt, PROMPT_TEXT), asked)
    vocab, codec = frame_model.tokenizer.vocab, frame_model.codec_record
    torch.manual_seed(0)
    aligner = FrameAligner(AlignerConfig(n_phonemes=len(vocab), n_codebooks=codec.n_codebooks,
                                         codebook_size=codec.codebook_size, channels=16, layers=1, kernel=3))
    aligner.save_pretrained(tmp_path / "shipped" / "aligner-test", TrainedOn(vocab, codec))
    job = frame_model.plan(SynthesisRequest(text, prompt, PROMPT_TEXT), asked)[0][0]
    ids = torch.tensor(frame_model.tokenizer(PROMPT_TEXT))
    path = aligner.eval().path(ids, job.prompt_codes, ~frame_model._sounding[ids])  # the prompt's words on its frames
    expected = frame_model.frames.prompt_map(ids, path, job.prompt_codes, ridge=10.0)
    torch.testing.assert_close(job.latent_map.weight, expected.weight)
    torch.testing.assert_close(job.latent_map.bias, expected.bias)
    assert job.latent_map.neighbours == 0
    assert not torch.equal(frame_model.render(job), frame_model.render(replace(job, latent_map=None)))
    local = frame_model.plan(SynthesisRequest(text, prompt, PROMPT_TEXT), SamplingConfig(prompt_neighbours=0.5))[0][0]
    assert torch.equal(local.latent_map.weight, torch.eye(len(expected.bias))) and local.latent_map.neighbours == 0.5
    assert not torch.equal(frame_model.render(local), frame_model.render(replace(local, latent_map=None)))
    out = frame_model.synthesize(text, prompt, PROMPT_TEXT, sampling=asked, watermark=False)
    assert np.isfinite(out.samples).all() and len(out.samples) > 0
    assert frame_model.plan(SynthesisRequest(text, prompt, PROMPT_TEXT), SamplingConfig())[0][0].latent_map is None
    assert frame_model.plan(SynthesisRequest(text, prompt), asked)[0][0].latent_map is None  # no words, no map
    monkeypatch.setattr(frame_model, "_aligner", None)
    swapped = list(vocab.tokens)
    swapped[-2:] = swapped[:-3:-1]  # two phones' ids swapped: another vocabulary of the same size
    shifted = PhonemeVocab(swapped, vocab.version)
    aligner.save_pretrained(tmp_path / "shipped" / "aligner-test", TrainedOn(shifted, codec))
    with pytest.raises(ConfigError, match="reads another phoneme vocabulary than this model's"):
        frame_model.plan(SynthesisRequest(text, prompt, PROMPT_TEXT), asked)
    monkeypatch.setattr(frame_model, "_aligner", None)
    later = PhonemeVocab([*vocab.tokens, "ʘ"], vocab.version)  # one phone more after the model's ids: they still read
    aligner.save_pretrained(tmp_path / "shipped" / "aligner-test", TrainedOn(later, codec))
    assert frame_model.plan(SynthesisRequest(text, prompt, PROMPT_TEXT), asked)[0][0].latent_map is not None


def test_a_frame_stage_told_the_pitch_speaks_at_the_register_measured_on_the_prompt(frame_model, prompt, monkeypatch):
    import valle.infer.pipeline as pipeline

    tracked = []
    monkeypatch.setattr(pipeline, "track_pitch", lambda *args: tracked.append(args) or track_pitch(*args))
    frames = FrameModel(replace(frame_model.frames.config, pitch=True))
    frames.load_state_dict(frame_model.frames.state_dict(), strict=False)
    with torch.no_grad():
        frames.pitch_embedding.weight.normal_()  # as trained: the pitch changes what the frames become
        frames.pitch_head.bias.copy_(torch.tensor([5.0, 0.0]))  # every frame voiced, at the prompt's register
    pitched = VallE(None, None, frame_model.codec, frame_model.tokenizer.vocab, frame_model.codec_name, frames=frames)
    jobs, _ = pitched.plan(SynthesisRequest("Said at its pitch.", prompt), SamplingConfig())
    assert abs(2 ** jobs[0].prompt_pitch - 120) < 10  # the prompt glides about 120 Hz
    octave_up = replace(jobs[0], prompt_pitch=jobs[0].prompt_pitch + 1)
    assert not torch.equal(pitched.render(octave_up), pitched.render(jobs[0]))
    out = pitched.synthesize("Said at its pitch.", prompt, watermark=False)
    assert np.isfinite(out.samples).all() and len(out.samples) > 0
    assert len(tracked) == 1  # the same prompt again: its pitch is kept with its codes
    assert frame_model.plan(SynthesisRequest("Said.", prompt), SamplingConfig())[0][0].prompt_pitch is None


def test_a_frame_stage_speaks_at_the_prompts_rate_read_off_its_transcript_when_one_is_given(frame_model, prompt, monkeypatch):
    monkeypatch.setattr(frame_model, "_transcribe", lambda samples: pytest.fail("the rate needs no recognised transcript"))
    text = "Said at the prompt's pace."

    def job(prompt_text=None, **sampling):
        return frame_model.plan(SynthesisRequest(text, prompt, prompt_text), SamplingConfig(**sampling))[0][0]

    ids = torch.tensor(frame_model.tokenizer(PROMPT_TEXT))
    sounding = frame_model._sounding[ids]
    own = frame_model.frames.prompt_pace(ids, job().prompt_codes, sounding)
    assert own != pytest.approx(1.0, abs=0.05)  # this stage's three frames a phoneme are not the prompt's rate
    told = job(PROMPT_TEXT)
    assert told.pace == pytest.approx(own)
    assert job(PROMPT_TEXT, rate=0.5).pace == pytest.approx(own ** 0.5)
    assert job().pace == 1.0 and job(PROMPT_TEXT, rate=0.0).pace == 1.0  # no transcript, or not asked: its own rate
    at_own, at_prompts = frame_model.render(job()).shape[1], frame_model.render(told).shape[1]
    assert at_prompts == pytest.approx(at_own / own, rel=0.15)
    slower = job(PROMPT_TEXT, speed=0.8)  # and as many times as fast as that as asked
    assert slower.pace == pytest.approx(0.8 * own) and job(speed=0.8).pace == job(PROMPT_TEXT, rate=0.0, speed=0.8).pace == 0.8
    assert frame_model.render(slower).shape[1] == pytest.approx(at_prompts / 0.8, rel=0.15)
    with pytest.raises(ConfigError, match="rate must be in"):
        SamplingConfig(rate=1.5)
    with pytest.raises(ConfigError, match="speed must be in"):
        SamplingConfig(speed=0.2)


def test_a_frame_stage_gives_its_latents_the_spread_of_the_prompts_unless_told_not_to(frame_model, prompt, monkeypatch):
    spreads = []
    original = FrameModel.predict_latents

    def spy(self, *args, **kwargs):
        latent = original(self, *args, **kwargs)
        spreads.append(latent[0].std(0))
        return latent

    monkeypatch.setattr(FrameModel, "predict_latents", spy)
    matched = frame_model.synthesize("Spread as the prompt.", prompt, watermark=False)
    kept = frame_model.synthesize("Spread as the prompt.", prompt, sampling=SamplingConfig(variance=0.0), watermark=False)
    assert frame_model.sampling.variance == 1.0 and len(spreads) == 2 and torch.equal(spreads[0], spreads[1])
    assert not np.array_equal(matched.samples, kept.samples)
    spreads.clear()
    frame_model.synthesize("Spread as the prompt.", prompt, sampling=SamplingConfig(voice_feedback=1.0), watermark=False)
    assert frame_model.sampling.voice_feedback == 0.0 and len(spreads) == 2  # asked for, the sentence is rendered twice
