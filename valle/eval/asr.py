"""Offline speech recognition for intelligibility scores (WER).

The default backend is PocketSphinx with the US English model its wheel ships: weak
on unusual voices (it cannot read espeak-ng's formant voices), but offline and
deterministic, so it ranks systems fairly when they are scored on the same speech.
Stronger recognisers (Whisper; HuBERT or wav2vec 2.0 with a CTC head, the paper's
choice) load from a local folder in the `transformers` layout: nothing is downloaded.
"""

import json
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from valle.audio import resample
from valle.errors import ConfigError, DependencyError

_NOT_WORD = re.compile(r"[^a-z' ]+")


def normalize_for_wer(text: str) -> str:
    """Lower case, hyphens as spaces, no punctuation: how both reference and hypothesis are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("-", " ")).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER (total edits / total reference words) after `normalize_for_wer`."""
    import jiwer

    return float(jiwer.wer([normalize_for_wer(r) for r in references], [normalize_for_wer(h) or "<empty>" for h in hypotheses]))


class Recognizer(Protocol):
    name: str

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str: ...


class PocketSphinx:
    """`transcribe(samples, sample_rate) -> text` with PocketSphinx's bundled en-us model."""

    RATE = 16000
    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise DependencyError("WER needs PocketSphinx: `pip install 'valle[eval]'`") from None
        self._decoder = Decoder(samprate=self.RATE, loglevel="FATAL")

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        pcm = (np.clip(resample(samples.astype(np.float32), sample_rate, self.RATE), -1, 1) * 32767).astype(np.int16)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis else ""


CTC_MODEL_TYPES = ("hubert", "wav2vec2", "wavlm", "data2vec-audio")


class TransformersASR:
    """Whisper, or a CTC model (HuBERT, wav2vec 2.0, WavLM), from a local `transformers` folder; greedy decoding."""

    RATE = 16000

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        path = Path(path)
        model_type = _model_type(path, "a Whisper or CTC speech recogniser")
        try:
            import torch
            from transformers import AutoModelForCTC, AutoProcessor, WhisperForConditionalGeneration
        except ImportError as e:
            raise DependencyError(f"this ASR backend needs transformers ({e}): `pip install 'valle[encodec]'`") from None
        if model_type == "whisper":
            loader = WhisperForConditionalGeneration
        elif model_type in CTC_MODEL_TYPES:
            loader = AutoModelForCTC
        else:
            raise ConfigError(f"{path} holds a {model_type!r} model; the ASR backends are Whisper and CTC models "
                              f"({', '.join(CTC_MODEL_TYPES)})")
        self.name, self._whisper, self._device, self._torch = f"{model_type}:{path.name}", model_type == "whisper", device, torch
        self._processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        self._model = loader.from_pretrained(path, local_files_only=True).to(device).eval()

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        audio = resample(samples.astype(np.float32), sample_rate, self.RATE)
        inputs = self._processor(audio, sampling_rate=self.RATE, return_tensors="pt").to(self._device)
        with self._torch.inference_mode():
            if self._whisper:
                ids = self._model.generate(inputs.input_features, language="en", task="transcribe")
                return self._processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
            ids = self._model(**inputs).logits.argmax(-1)
            return self._processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def _model_type(path: Path, what: str) -> str:
    """The `model_type` in a local transformers folder's config.json, or an error that says what to give."""
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a local model folder (no config.json); give {what} saved in the transformers "
                          "layout (a Hugging Face snapshot folder): weights are never downloaded")
    return json.loads((path / "config.json").read_text()).get("model_type", "unknown")


def load_recognizer(name_or_path: str | Path = "pocketsphinx", device: str = "cpu") -> Recognizer:
    """"pocketsphinx" (bundled, the default) or a local folder with Whisper or a CTC model."""
    return PocketSphinx() if str(name_or_path) == "pocketsphinx" else TransformersASR(name_or_path, device)
