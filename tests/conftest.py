"""Shared fixtures: small signals and models made by the tests themselves, never downloaded."""

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from valle.codec.compact import CompactCodecConfig

if os.environ.get("PYTEST_XDIST_WORKER"):  # workers share the cores: one thread each, in here and in what they launch
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

TINY = CompactCodecConfig(encoder_dim=32, encoder_layers=1, latent_dim=16, decoder_dim=32, decoder_layers=1,
                          n_codebooks=4, codebook_size=32)  # a compact codec that trains in seconds

# A tiny transformers speech encoder (HuBERT, WavLM): the local-folder backends' wiring, not their quality.
TINY_SPEECH_ENCODER = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
                           conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def speechlike(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-rate modulated harmonic signal: loud enough, not silent, not clipped."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * voiced * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def write_wav(tmp_path: Path) -> Callable[..., Path]:
    """Write samples (or `seconds` of speech-like signal) to a file under tmp_path and return its path."""

    def write(name: str, samples: np.ndarray | None = None, sample_rate: int = 16000, seconds: float = 2.0,
              **soundfile_options: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speechlike(seconds, sample_rate) if samples is None else samples, sample_rate, **soundfile_options)
        return path

    return write


def tiny_encodec_folder(path: Path) -> Path:
    """A randomly initialised EnCodec with the 24 kHz model's rates and quantiser, small layers."""
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    EncodecModel(EncodecConfig(num_filters=4, hidden_size=16, codebook_dim=16, num_lstm_layers=1)).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete model folder (tiny random AR, NAR and codec): the pipeline's wiring, not its quality."""
    from valle.codec import load_codec
    from valle.codec.compact import CompactCodec
    from valle.infer import VallE
    from valle.model import ARModel, NARModel, preset
    from valle.text import PhonemeVocab

    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    codec = CompactCodec(TINY).train()
    codec(torch.randn(4, 16000) * 0.1)
    codec_dir = codec.save_pretrained(root / "codec")
    vocab = PhonemeVocab()
    config = preset("tiny", n_phonemes=len(vocab), n_codebooks=TINY.n_codebooks, codebook_size=TINY.codebook_size)
    valle = VallE(ARModel(config), NARModel(config), load_codec(codec_dir), vocab, str(codec_dir))
    return valle.save_pretrained(root / "model")


POLYGLOT_LANGUAGES = ("en-us", "es", "fr-fr")


@pytest.fixture(scope="session")
def polyglot_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`model_dir`'s model with a language input (VALL-E X) for English, Spanish and French, languages set apart."""
    from dataclasses import replace

    from valle.infer import VallE
    from valle.model import ARModel, NARModel

    valle = VallE.from_pretrained(model_dir)
    torch.manual_seed(1)
    config = replace(valle.ar.config, languages=POLYGLOT_LANGUAGES)
    stages = ARModel(config), NARModel(config)
    for stage, trained in zip(stages, (valle.ar, valle.nar)):
        stage.load_state_dict(trained.state_dict(), strict=False)
        with torch.no_grad():
            stage.language_embedding.weight[:-1].normal_()  # the last row, no language, stays at zero
    return VallE(*stages, valle.codec, valle.tokenizer.vocab, valle.codec_name).save_pretrained(
        tmp_path_factory.mktemp("polyglot") / "model")
