"""Optional scoring backends that load local transformers folders: tiny random models made here."""

import json

import numpy as np
import pytest
from conftest import speechlike

from valle.asr import FasterWhisper, load_recognizer
from valle.errors import ConfigError
from valle.speaker import SpeakerEncoder, cosine, load_speaker_embedder

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
            conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@pytest.fixture(scope="module")
def ctc_folder(tmp_path_factory):
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    path = tmp_path_factory.mktemp("ctc")
    letters = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("abcdefghijklmnopqrstuvwxyz'")
    (path / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    Wav2Vec2Processor(Wav2Vec2FeatureExtractor(), tokenizer).save_pretrained(path)
    HubertForCTC(HubertConfig(vocab_size=len(letters), **TINY)).save_pretrained(path)
    return path


def test_ctc_recogniser_from_a_local_folder_transcribes(ctc_folder):
    asr = load_recognizer(ctc_folder)
    text = asr.transcribe(speechlike(1.0, 22050), 22050)  # any rate: resampled to 16 kHz
    assert asr.name == f"hubert:{ctc_folder.name}" and isinstance(text, str) and set(text) <= set("abcdefghijklmnopqrstuvwxyz' ")


def test_wavlm_verifier_from_a_local_folder_gives_unit_vectors(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    WavLMForXVector(WavLMConfig(**TINY, tdnn_dim=(16, 16), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=8,
                                num_buckets=8, max_bucket_distance=20)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    embedder = load_speaker_embedder(tmp_path)
    a, b = embedder.embed(speechlike(1.5, 16000, seed=1), 16000), embedder.embed(speechlike(1.5, 16000, seed=2), 16000)
    assert a.shape == (8,) and np.isclose(np.linalg.norm(a), 1) and -1 <= cosine(a, b) <= 1


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
