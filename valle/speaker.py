"""Speaker embeddings with Resemblyzer, whose weights ship inside its package (works offline).

The paper scores speaker similarity with WavLM-TDNN; Resemblyzer's d-vector encoder is
the offline default here because it needs no download. A WavLM speaker-verification
model (x-vector head) loads from a local `transformers` folder when one is given.
Prompt checks and evaluation both embed speakers, so the encoders sit below `valle.infer`
and `valle.eval`.
"""

from pathlib import Path
from typing import Protocol

import numpy as np

from valle.audio import resample
from valle.errors import ConfigError, DependencyError

ENCODER_RATE = 16000


class SpeakerEmbedder(Protocol):
    name: str

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray: ...


class SpeakerEncoder:
    """Unit-norm d-vectors of utterances; cosine similarity is their dot product."""

    name = "resemblyzer"

    def __init__(self, device: str = "cpu") -> None:
        try:
            import torch
            from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError as e:
            raise DependencyError(f"speaker embeddings need Resemblyzer ({e}); install it with "
                                  "`pip install 'valle[eval]'` (it pins setuptools<81 for webrtcvad)") from None
        self._encoder = VoiceEncoder(device, verbose=False)
        self._preprocess, self._torch = preprocess_wav, torch

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The d-vector of one mono utterance (voice-activity trimmed, level normalised first)."""
        # A 3-layer LSTM on a few hundred frames: one thread is as fast as two and does
        # not stall when another process holds the second core. The caller's setting is kept.
        threads = self._torch.get_num_threads()
        self._torch.set_num_threads(1)
        try:
            return self._encoder.embed_utterance(self._preprocess(samples, source_sr=sample_rate))
        finally:
            self._torch.set_num_threads(threads)


class WavLMVerifier:
    """X-vectors of a WavLM speaker-verification model (e.g. a wavlm-base-plus-sv snapshot) from a local folder."""

    RATE = 16000

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from valle.asr import local_model_type

        path = Path(path)
        if (model_type := local_model_type(path, "a WavLM speaker-verification model")) != "wavlm":
            raise ConfigError(f"{path} holds a {model_type!r} model; the speaker backends are resemblyzer and WavLM")
        try:
            import torch
            from transformers import AutoFeatureExtractor, WavLMForXVector
        except ImportError as e:
            raise DependencyError(f"the WavLM backend needs transformers ({e}): `pip install 'valle[encodec]'`") from None
        self.name, self._device, self._torch = f"wavlm:{path.name}", device, torch
        self._features = AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
        self._model = WavLMForXVector.from_pretrained(path, local_files_only=True).to(device).eval()

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        inputs = self._features(resample(samples.astype(np.float32), sample_rate, self.RATE), sampling_rate=self.RATE,
                                return_tensors="pt").to(self._device)
        with self._torch.inference_mode():
            vector = self._model(**inputs).embeddings[0].float().cpu().numpy()
        return vector / np.linalg.norm(vector)


def load_speaker_embedder(name_or_path: str | Path = "resemblyzer", device: str = "cpu") -> SpeakerEmbedder:
    """"resemblyzer" (bundled, the default) or a local folder with a WavLM x-vector model."""
    return SpeakerEncoder(device) if str(name_or_path) == "resemblyzer" else WavLMVerifier(name_or_path, device)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def speaker_separation(by_speaker: dict[str, np.ndarray]) -> dict:
    """How well embeddings tell speakers apart.

    `by_speaker` maps each speaker to its utterances' embeddings `[n, dim]` (n >= 2).
    Returns the mean cosine of same-speaker and of cross-speaker utterance pairs, and
    nearest-centroid identification: the first half of each speaker's utterances
    enrols it, the second half is classified among all centroids.
    """
    speakers = list(by_speaker)
    embeddings = _unit(np.concatenate(list(by_speaker.values())))
    labels = np.concatenate([[i] * len(by_speaker[s]) for i, s in enumerate(speakers)])
    cos = embeddings @ embeddings.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)

    halves = [len(by_speaker[s]) // 2 for s in speakers]
    centroids = _unit(np.stack([by_speaker[s][:h].mean(0) for s, h in zip(speakers, halves)]))
    held_out = _unit(np.concatenate([by_speaker[s][h:] for s, h in zip(speakers, halves)]))
    truth = np.concatenate([[i] * (len(by_speaker[s]) - h) for i, (s, h) in enumerate(zip(speakers, halves))])
    correct = (held_out @ centroids.T).argmax(1) == truth
    return {
        "speakers": len(speakers),
        "utterances": len(labels),
        "same_speaker_cosine": float(cos[same & off_diagonal].mean()),
        "cross_speaker_cosine": float(cos[~same].mean()),
        "identification_accuracy": float(correct.mean()),
        "identified": {s: float(correct[truth == i].mean()) for i, s in enumerate(speakers)},
        "centroid_similarity": (centroids @ centroids.T).tolist(),
        "speaker_names": speakers,
    }
