"""Offline speech recognition for intelligibility scores (WER).

The default backend is PocketSphinx with the US English model its wheel ships: weak
on unusual voices (it cannot read espeak-ng's formant voices), but offline and
deterministic, so it ranks systems fairly when they are scored on the same speech.
"""

import re

import numpy as np

from valle.audio import resample
from valle.errors import DependencyError

_NOT_WORD = re.compile(r"[^a-z' ]+")


def normalize_for_wer(text: str) -> str:
    """Lower case, hyphens as spaces, no punctuation: how both reference and hypothesis are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("-", " ")).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER (total edits / total reference words) after `normalize_for_wer`."""
    import jiwer

    return float(jiwer.wer([normalize_for_wer(r) for r in references], [normalize_for_wer(h) or "<empty>" for h in hypotheses]))


class PocketSphinx:
    """`transcribe(samples, sample_rate) -> text` with PocketSphinx's bundled en-us model."""

    RATE = 16000

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
