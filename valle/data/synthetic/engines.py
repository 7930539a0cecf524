"""The two offline speech synthesisers the synthetic corpus speaks with.

espeak-ng is called in-process through ctypes on the library that the
`espeakng-loader` wheel ships (no system package); flite is Debian's `flite`
program. Both are deterministic, so a corpus is reproducible from its seed.
"""

import ctypes
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from valle.errors import DependencyError

# espeak-ng's C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    """espeak-ng through its C library; one instance per process (the library keeps global state)."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_parent = os.path.dirname(espeakng_loader.get_data_path())
        self.sample_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0)
        if self.sample_rate <= 0:
            raise DependencyError(f"espeak-ng failed to start with its data in {data_parent}; reinstall espeakng-loader")
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept referenced: the library calls it later
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples: "ctypes._Pointer", n: int, _events: int) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(n,)).copy())
        return 0

    def speak(self, text: str, voice: str, pitch: int, pitch_range: int, rate: int) -> np.ndarray:
        """Return float32 samples at `self.sample_rate`; pitch and range are 0..100, rate in words/min."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DependencyError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in ((_PITCH, pitch), (_RANGE, pitch_range), (_RATE, rate)):
            self._lib.espeak_SetParameter(parameter, value, 0)
        self._chunks = []
        encoded = text.encode()
        self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples.astype(np.float32) / 32768.0


class Flite:
    """Debian's `flite` program; its voices are 16 kHz."""

    VOICES = ("slt", "rms", "awb", "kal16")

    def __init__(self) -> None:
        self._program = shutil.which("flite")
        if self._program is None:
            raise DependencyError("the `flite` program is not installed; install it with `apt-get install flite`")

    def speak(self, text: str, voice: str, f0_mean: float, stretch: float) -> tuple[np.ndarray, int]:
        """Return float32 samples and their rate; `f0_mean` in Hz, `stretch` > 1 speaks slower."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            command = [self._program, "-voice", voice, "--setf", f"int_f0_target_mean={f0_mean:.1f}",
                       "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0 or not out.exists():
                raise DependencyError(f"flite failed on voice {voice!r}: {result.stderr.strip() or 'no output'}")
            samples, rate = sf.read(out, dtype="float32")
        return samples, rate


class Pico:
    """SVOX Pico through the `py-nanotts` wheel, whose voices ship inside it; 16 kHz.

    Its two English voices are women's recordings of another make than espeak-ng's formant
    synthesis and flite's unit selection: a third kind of voice for the corpus.
    """

    VOICES = ("en-US", "en-GB")
    sample_rate = 16000

    def __init__(self) -> None:
        try:
            from py_nanotts import NanoTTS
        except ImportError:
            raise DependencyError("SVOX Pico voices need the py-nanotts wheel: `pip install py-nanotts`") from None
        self._tts = NanoTTS()

    def speak(self, text: str, voice: str, pitch: float, speed: float) -> np.ndarray:
        """Return float32 samples at 16 kHz; `pitch` and `speed` are multipliers (1: the voice's own)."""
        pcm = self._tts.speak(text, voice=voice, speed=speed, pitch=pitch)
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


_ENGINES: dict[str, Callable[[], object]] = {"espeak": Espeak, "flite": Flite, "pico": Pico}
_instances: dict[str, object] = {}


def engine(name: str) -> Espeak | Flite | Pico:
    """The process-wide instance of an engine, created on first use (cheap for workers to call)."""
    if name not in _instances:
        _instances[name] = _ENGINES[name]()
    return _instances[name]  # type: ignore[return-value]
