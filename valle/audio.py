"""Audio in and out: read any common format, make it mono at the rate a model needs, check it.

Reading goes through soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3) and
resampling through soxr. Every problem with a file is raised as an `AudioError`
that names the file and what to do, because a prompt recorded on a phone is the
first thing a user feeds in and the last place a torch traceback helps.
"""

import io
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from valle.errors import AudioError
from valle.files import atomic_write

SILENCE_DBFS = -60.0  # a whole file quieter than this (RMS) holds no usable speech
CLIP_LEVEL = 0.999


class ClippingWarning(UserWarning):
    """The input has runs of samples at full scale: it was recorded too loud."""


def _dbfs(power: float | np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.maximum(power, 1e-20))


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header (no decoding)."""
    try:
        return sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"cannot read audio file {path}: {_reason(e)}") from None


def _reason(error: Exception) -> str:
    text = str(error).split(":")[-1].strip() or type(error).__name__
    return f"{text} (supported: wav, flac, ogg, opus, mp3; convert other formats, e.g. with ffmpeg)"


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file to float32 samples `[frames]` (mono) or `[frames, channels]`, with its rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"cannot read audio file {path}: {_reason(e)}") from None
    if samples.size == 0:
        raise AudioError(f"audio file {path} is empty (0 samples); record or export it again")
    return samples, rate


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of `[frames, channels]` audio; mono input is returned as is."""
    return samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); a no-op when the rates agree."""
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32)


def check_samples(samples: np.ndarray, source: str = "audio") -> None:
    """Raise for audio no model can use (NaN/inf, silence); warn when it is clipped."""
    if samples.size == 0:
        raise AudioError(f"{source} is empty (0 samples)")
    if not np.isfinite(samples).all():
        raise AudioError(f"{source} contains NaN or infinite samples; the file is corrupt, export it again")
    rms_db = float(_dbfs(np.mean(samples.astype(np.float64) ** 2)))
    if rms_db < SILENCE_DBFS:
        raise AudioError(f"{source} is silent (level {rms_db:.0f} dBFS); check the microphone and record again")
    clipped = np.abs(samples) >= CLIP_LEVEL
    if clipped.mean() > 0.001 and (clipped[1:] & clipped[:-1]).any():
        warnings.warn(f"{source} is clipped ({100 * clipped.mean():.1f} % of samples at full scale); "
                      "a quieter recording will clone the voice better", ClippingWarning, stacklevel=2)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read `path` as float32 mono at `sample_rate`, checked for corruption and silence."""
    samples, rate = read_audio(path)
    samples = resample(to_mono(samples), rate, sample_rate)
    check_samples(samples, f"audio file {path}")
    return samples


def trim_silence(samples: np.ndarray, sample_rate: int, threshold_db: float = -40.0, keep_ms: float = 100.0) -> np.ndarray:
    """Cut leading and trailing stretches quieter than `threshold_db` below the loudest 10 ms frame.

    `keep_ms` of the quiet edge stays on each side so that onsets and decays are not clipped.
    """
    frame = max(1, sample_rate // 100)
    n_frames = len(samples) // frame
    if n_frames == 0:
        return samples
    power = np.mean(samples[: n_frames * frame].reshape(n_frames, frame).astype(np.float64) ** 2, axis=1)
    loud = np.flatnonzero(_dbfs(power) > _dbfs(power.max()) + threshold_db)
    keep = int(keep_ms * sample_rate / 1000)
    start = max(0, loud[0] * frame - keep)
    end = min(len(samples), (loud[-1] + 1) * frame + keep)
    return samples[start:end]


def normalize_loudness(samples: np.ndarray, target_dbfs: float = -20.0, peak: float = 0.95) -> np.ndarray:
    """Scale to `target_dbfs` RMS, then down if needed so that no sample exceeds `peak`."""
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2))
    if rms == 0:
        return samples
    scaled = samples * (10 ** (target_dbfs / 20) / rms)
    top = np.abs(scaled).max()
    if top > peak:
        scaled = scaled * (peak / top)
    return scaled.astype(np.float32)


def load_prompt(path: str | Path, sample_rate: int, min_seconds: float = 1.0, max_seconds: float = 30.0) -> np.ndarray:
    """Load a voice prompt: mono, resampled, silence trimmed, loudness normalised, length checked.

    The paper prompts with 3 s; under 1 s there is too little voice to clone and
    long prompts cost attention time quadratically, so both ends are bounded.
    """
    return prompt_samples(load_audio(path, sample_rate), sample_rate, f"prompt {path}", min_seconds, max_seconds)


def prompt_samples(samples: np.ndarray, sample_rate: int, source: str = "the prompt", min_seconds: float = 1.0,
                   max_seconds: float = 30.0) -> np.ndarray:
    """`load_prompt` for samples already loaded; `source` names them in errors."""
    samples = trim_silence(samples, sample_rate)
    seconds = len(samples) / sample_rate
    if seconds < min_seconds:
        raise AudioError(f"{source} holds {seconds:.2f} s of speech after trimming silence; "
                         f"it needs at least {min_seconds:g} s (3 s works best)")
    if seconds > max_seconds:
        raise AudioError(f"{source} is {seconds:.1f} s long; the limit is {max_seconds:g} s: "
                         "cut a 3-10 s excerpt of clean speech")
    return normalize_loudness(samples)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int, comment: str | None = None) -> Path:
    """Write 16-bit PCM WAV atomically; returns the path (see `wav_bytes` for the comment)."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(wav_bytes(samples, sample_rate, comment))
    return path


def wav_bytes(samples: np.ndarray, sample_rate: int, comment: str | None = None) -> bytes:
    """16-bit PCM WAV in memory.

    A `comment` (e.g. "synthetic speech generated by valle") is stored in the WAV's
    RIFF LIST/INFO chunk as ICMT, with ISFT naming valle; `read_comment` reads it back.
    """
    samples = np.clip(samples, -1.0, 1.0)
    buffer = io.BytesIO()
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with sf.SoundFile(buffer, "w", sample_rate, channels, format="WAV", subtype="PCM_16") as out:
        if comment is not None:
            from valle import __version__

            out.comment = comment
            out.software = f"valle {__version__}"
        out.write(samples)
    return buffer.getvalue()


OPEN_LENGTH = 0xFFFFFFFF  # a WAV size field that says "until the stream ends"


def wav_header(sample_rate: int, data_bytes: int | None, comment: str | None = None) -> bytes:
    """The header of a 16-bit mono WAV (as `wav_bytes` writes it) whose data is `data_bytes` long; None: open length."""
    header = bytearray(wav_bytes(np.zeros(0, np.float32), sample_rate, comment))
    header[-4:] = struct.pack("<I", OPEN_LENGTH if data_bytes is None else data_bytes)
    header[4:8] = struct.pack("<I", OPEN_LENGTH if data_bytes is None else len(header) - 8 + data_bytes)
    return bytes(header)


def pcm16(samples: np.ndarray) -> bytes:
    """Mono float samples as little-endian 16-bit PCM, the body of a WAV."""
    return (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2").tobytes()


class WavStreamWriter:
    """A mono 16-bit WAV written chunk by chunk.

    On a file its sizes are rewritten after every chunk, so that it is a valid WAV however
    far the stream got; on a pipe (standard output) the header says "open length" and
    players read until the stream ends.
    """

    def __init__(self, target: BinaryIO, sample_rate: int, comment: str | None = None) -> None:
        self.target, self.sample_rate, self.comment = target, sample_rate, comment
        self.seekable = target.seekable()
        self.data_bytes = 0
        target.write(wav_header(sample_rate, 0 if self.seekable else None, comment))

    def write(self, samples: np.ndarray) -> None:
        body = pcm16(samples)
        self.target.write(body)
        self.data_bytes += len(body)
        if self.seekable:
            end = self.target.tell()
            self.target.seek(0)
            self.target.write(wav_header(self.sample_rate, self.data_bytes, self.comment))
            self.target.seek(end)
        self.target.flush()


def read_comment(path: str | Path) -> str:
    """The comment stored in an audio file's metadata (WAV: LIST/INFO ICMT), or "" if none."""
    try:
        with sf.SoundFile(str(path)) as f:
            return f.comment or ""
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"cannot read audio file {path}: {_reason(e)}") from None


def warp_formants(samples: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Move the formants by `factor` and leave the pitch: the spectral envelope is stretched, the harmonics stay.

    Each frame's envelope is its log spectrum smoothed by cepstral liftering (quefrencies under
    2.5 ms, shorter than the pitch period of voices under 400 Hz); the frame is multiplied by
    the envelope read at f / factor over the envelope itself, and the frames are overlap-added.
    """
    n_fft, hop, lifter = 1024, 256, round(0.0025 * sample_rate)
    window = np.hanning(n_fft + 1)[:-1]
    padded = np.pad(samples.astype(np.float64), (n_fft, n_fft + hop))
    spectra = np.fft.rfft(np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window)
    cepstra = np.fft.irfft(np.log(np.abs(spectra) + 1e-7))
    cepstra[:, lifter:n_fft - lifter + 1] = 0
    envelopes = np.fft.rfft(cepstra).real
    bins = np.arange(envelopes.shape[1])
    warped = np.stack([np.interp(bins / factor, bins, envelope) for envelope in envelopes])
    frames = np.fft.irfft(spectra * np.exp(warped - envelopes), n_fft) * window
    starts = hop * np.arange(len(frames))[:, None] + np.arange(n_fft)
    out, weight = np.zeros(len(padded)), np.zeros(len(padded))
    np.add.at(out, starts, frames)
    np.add.at(weight, starts, np.broadcast_to(window**2, frames.shape))
    return (out / np.maximum(weight, 1e-3))[n_fft:n_fft + len(samples)].astype(np.float32)
