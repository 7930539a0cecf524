"""`valle.speaker`: separation statistics, the synthetic corpus's voices as Resemblyzer hears them, and a WavLM
verifier in a local transformers folder (a tiny random one made here)."""

import numpy as np
import pytest
from conftest import TINY_SPEECH_ENCODER, speechlike

from valle.audio import load_audio
from valle.data.manifest import read_manifest
from valle.data.synthetic import build_synthetic_corpus
from valle.data.synthetic.corpus import SPLITS
from valle.speaker import ENCODER_RATE, SpeakerEncoder, cosine, load_speaker_embedder, speaker_separation


def test_separation_of_clustered_embeddings():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16) * 3
    by_speaker = {f"s{i}": centres[i] + 0.3 * rng.standard_normal((6, 16)) for i in range(4)}
    result = speaker_separation(by_speaker)
    assert result["identification_accuracy"] == 1.0
    # noise of norm ~1.2 around centres of norm 3: cos(same) ~ 9 / (9 + 1.44) ~ 0.86
    assert result["same_speaker_cosine"] > 0.8 and result["cross_speaker_cosine"] < 0.2
    assert result["utterances"] == 24 and result["speakers"] == 4


def test_separation_of_indistinct_speakers_is_near_chance():
    rng = np.random.default_rng(1)
    by_speaker = {f"s{i}": rng.standard_normal((40, 64)) for i in range(10)}
    result = speaker_separation(by_speaker)
    assert result["identification_accuracy"] < 0.3
    assert abs(result["same_speaker_cosine"] - result["cross_speaker_cosine"]) < 0.05


@pytest.mark.slow
def test_synthetic_speakers_are_distinct_to_resemblyzer(tmp_path):
    """A small corpus (12 speakers) through the real encoder: the benchmark's targets hold."""
    corpus = tmp_path / "corpus"
    build_synthetic_corpus(corpus, hours=0.15, n_speakers=12, seed=5, max_seconds=5.0)
    encoder = SpeakerEncoder()
    by_speaker: dict[str, list[np.ndarray]] = {}
    for split in SPLITS:
        for row in read_manifest(corpus / f"{split}.jsonl"):
            by_speaker.setdefault(row.speaker, []).append(encoder.embed(load_audio(row.audio, ENCODER_RATE), ENCODER_RATE))
    assert all(len(v) >= 4 for v in by_speaker.values())
    result = speaker_separation({s: np.stack(v) for s, v in by_speaker.items()})
    assert result["same_speaker_cosine"] - result["cross_speaker_cosine"] >= 0.15
    assert result["identification_accuracy"] >= 0.9
    one = next(iter(by_speaker.values()))
    assert cosine(one[0], one[0]) == pytest.approx(1.0, abs=1e-5)


def test_wavlm_verifier_from_a_local_folder_gives_unit_vectors(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    WavLMForXVector(WavLMConfig(**TINY_SPEECH_ENCODER, tdnn_dim=(16, 16), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=8,
                                num_buckets=8, max_bucket_distance=20)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    embedder = load_speaker_embedder(tmp_path)
    a, b = embedder.embed(speechlike(1.5, 16000, seed=1), 16000), embedder.embed(speechlike(1.5, 16000, seed=2), 16000)
    assert a.shape == (8,) and np.isclose(np.linalg.norm(a), 1) and -1 <= cosine(a, b) <= 1
