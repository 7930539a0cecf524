"""Naturalness estimates without listeners: Microsoft's DNSMOS (P.835 and P.808 models).

The ONNX models ship inside the `speechmos` package, so scoring works offline. Sessions
run one thread each, so that several processes can score in parallel on few cores.
"""

from pathlib import Path

import numpy as np

from valle.audio import resample
from valle.errors import AudioError, DependencyError

DNSMOS_RATE = 16000
DNSMOS_KEYS = ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")
MIN_SECONDS = 0.5  # speechmos tiles shorter audio up to 9 s (and never returns on none at all)


class DNSMOS:
    """`score(samples, sample_rate) -> {ovrl_mos, sig_mos, bak_mos, p808_mos}` (1 = bad .. 5 = excellent)."""

    def __init__(self) -> None:
        try:
            import onnxruntime as ort
            from speechmos import dnsmos as module
        except ImportError as e:
            raise DependencyError(f"DNSMOS needs speechmos and onnxruntime ({e}): `pip install 'valle[mos]'`") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        models = Path(module.__file__).parent / "dnsmos_models"
        # speechmos builds its sessions with every core; build them here with one thread instead.
        self._model = module.DNSMOS.__new__(module.DNSMOS)
        self._model.primary_model_path = str(models / "sig_bak_ovr.onnx")
        self._model.onnx_sess = ort.InferenceSession(self._model.primary_model_path, options, providers=["CPUExecutionProvider"])
        self._model.p808_onnx_sess = ort.InferenceSession(str(models / "model_v8.onnx"), options,
                                                          providers=["CPUExecutionProvider"])

    def score(self, samples: np.ndarray, sample_rate: int) -> dict[str, float]:
        if len(samples) < MIN_SECONDS * sample_rate:
            raise AudioError(f"DNSMOS needs at least {MIN_SECONDS} s of audio, got {len(samples) / sample_rate:.2f} s")
        x = np.clip(resample(samples.astype(np.float32), sample_rate, DNSMOS_RATE), -1, 1)
        scores = self._model(x, DNSMOS_RATE, False)
        return {key: float(scores[key]) for key in DNSMOS_KEYS}
