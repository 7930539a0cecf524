"""What the readers of speech shipped in Debian packages share: where packages put files,
counted skips, and one pass that deduplicates, decodes and measures the clips.

ROOT is the folder under which the packages' files lie as Debian installs them
(`ROOT/usr/share/...`): `/` by default, or a folder filled by `dpkg-deb -x PKG.deb ROOT`.
A package that Debian declares in conflict with another one a source needs is unpacked
by `valle data install-sources` under ROOT/usr/local/share/valle/debian instead, and
found there as well.

Package data is not a research corpus, and three things follow:
- gaps are normal (prompts without transcripts, sound effects beside speech, clips of a
  single letter), so a clip that cannot be used is skipped and counted by reason, never
  fatal: unreadable audio included, because one broken file in a game's data must not
  stop the other thousands;
- some audio is in formats libsndfile cannot read (G.722, GSM) or at telephone rates, so
  such clips are decoded (ffmpeg for the raw formats) and written as 16 kHz WAV to
  OUT/audio/<source>/; the manifest's `source_rate` keeps the rate of band-limited ones;
- a recording may ship several times (Tux Paint's filled and outlined letters), so clips
  are deduplicated by content, the first in the reader's order kept.
"""

import hashlib
import logging
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from valle.audio import read_audio, resample, to_mono, write_audio
from valle.data.corpora._common import report_skipped
from valle.data.manifest import Utterance
from valle.errors import AudioError, CorpusError, DependencyError

log = logging.getLogger("valle.data.corpora")

SYSTEM_ROOT = Path("/")
"""ROOT when none is given: where Debian installs packages."""

EXTRACTED = Path("usr/local/share/valle/debian")
"""Where, below ROOT, packages that conflict with installed ones are unpacked."""

SAMPLE_RATE = 16000
"""Audio below this rate, or in a format only ffmpeg reads, is written out at this rate."""

MIN_SECONDS = 0.5
"""Shorter clips (a letter, a click) hold too little speech to learn or prompt from."""

RESERVED = ("usr/share/festival", "usr/share/pocketsphinx", "usr/share/codec2", "usr/share/sounds/alsa")
"""Speech kept for independent evaluation (festival's voices, pocketsphinx-testdata,
codec2-examples, alsa-utils' sounds): no reader may list a file below these folders..."""
ALLOWED = ("usr/share/festival/voices/russian/msu_ru_nsh_clunits",)
"""...except festvox-ru's recordings, which are training data."""

ESPEAK_LANGUAGES = {
    **{code: code for code in ("ar", "be", "bg", "ca", "cs", "da", "de", "el", "es", "he", "hu", "id", "it", "lt", "ml", "nb",
                               "nl", "ro", "ru", "tn", "uk")},
    "en": "en-us", "en_GB": "en-gb", "fr": "fr-fr", "pt_BR": "pt-br",
}
"""The packages' locale codes -> the espeak-ng language that phonemises them. A locale
missing here (Low German, Nynorsk, Walloon) has no espeak-ng voice, and its clips are skipped."""

_RAW_FORMATS = {".g722": ("g722", 16000), ".gsm": ("gsm", 8000)}
"""Headerless telephone formats: ffmpeg's demuxer name and the rate the codec defines."""


class PackageMissing(CorpusError):
    """The files of a source's Debian packages are not under ROOT."""


class Skips:
    """Clips left out, by reason, to be reported once per source."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, clip_id: str) -> None:
        self.ids[reason].append(clip_id)

    def report(self, source: str) -> None:
        for reason, ids in self.ids.items():
            report_skipped(source, reason, ids)


def installed(root: Path, relative: str | Path) -> list[Path]:
    """The existing paths of `relative` as installed under ROOT or unpacked beside it."""
    return [base / relative for base in (root, root / EXTRACTED) if (base / relative).exists()]


def package_missing(source: str, packages: Sequence[str], root: Path, expected: str) -> PackageMissing:
    """The error for a source whose packages are not under ROOT: what to install, or which folder to pass."""
    where = "" if root == SYSTEM_ROOT else f" under {root}"
    return PackageMissing(
        f"no {source} data{where} (expected {expected}): install it with `apt-get install {' '.join(packages)}` "
        f"(or `valle data install-sources {source}`), or pass as SRC the folder its packages were unpacked into "
        "with `dpkg-deb -x PKG.deb SRC`"
    )


def check_not_reserved(path: Path, root: Path) -> None:
    """Refuse audio that lies, after links are followed, in speech kept for evaluation."""
    resolved = path.resolve()
    for base in {root.resolve(), Path("/")}:
        if not resolved.is_relative_to(base):
            continue
        relative = resolved.relative_to(base).as_posix()
        if any(_below(relative, r) for r in RESERVED) and not any(_below(relative, a) for a in ALLOWED):
            raise CorpusError(f"{path} lies in speech reserved for evaluation ({', '.join(RESERVED)}); "
                              "it must never be trained on: remove it from SRC")


def _below(relative: str, folder: str) -> bool:
    return relative == folder or relative.startswith(folder + "/")


def measure(clips: Sequence[Utterance], source: str, out: Path, skips: Skips, root: Path) -> list[Utterance]:
    """The clips as manifest rows: duplicates dropped, raw and low-rate audio written to
    OUT/audio/<source>/ at 16 kHz, durations measured, unreadable and short clips skipped."""
    for clip in clips:
        check_not_reserved(clip.audio, root)
    unique = _deduplicated(clips, source, skips)
    if any(clip.audio.suffix in _RAW_FORMATS for clip in unique) and shutil.which("ffmpeg") is None:
        raise DependencyError(f"{source} has G.722 or GSM audio, which needs ffmpeg to decode: `apt-get install ffmpeg`")
    audio_dir = out / "audio" / source
    rows = []
    for clip, result in zip(unique, _parallel(lambda c: _measured(c, audio_dir), unique, f"{source} audio")):
        if isinstance(result, AudioError):
            log.warning("%s: skipped %s: %s", source, clip.id, result)
            skips.add("with unreadable audio", clip.id)
        elif result.duration < MIN_SECONDS:
            skips.add(f"shorter than {MIN_SECONDS:g} s", clip.id)
        else:
            rows.append(result)
    return rows


def _deduplicated(clips: Sequence[Utterance], source: str, skips: Skips) -> list[Utterance]:
    """The first clip of each distinct audio content, in the readers' order."""
    seen: set[str] = set()
    unique = []
    for clip, digest in zip(clips, _parallel(lambda c: _digest(c.audio), clips, f"{source} content")):
        if digest is None or digest not in seen:
            unique.append(clip)
            if digest is not None:
                seen.add(digest)
        else:
            skips.add("whose audio repeats an earlier clip byte for byte", clip.id)
    return unique


def _digest(path: Path) -> str | None:
    """The content hash of `path`, or None when it cannot be read (measuring says why)."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    except OSError:
        return None


def _parallel(work: Callable, items: Sequence, desc: str) -> Iterable:
    """`work` over `items` in threads, in order, with a progress bar: the time goes to file reads and ffmpeg."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        yield from tqdm(pool.map(work, items), total=len(items), desc=desc, unit="file", disable=None)


def _measured(row: Utterance, audio_dir: Path) -> Utterance | AudioError:
    """`row` with its duration, pointing at a 16 kHz copy where the original needs decoding; or why not."""
    path = row.audio
    try:
        if path.suffix in _RAW_FORMATS:
            rate = _RAW_FORMATS[path.suffix][1]
        else:
            info = soundfile.info(str(path))
            if info.samplerate >= SAMPLE_RATE:
                return replace(row, duration=info.duration)
            rate = info.samplerate
        copy = audio_dir / f"{row.id}.wav"
        if not copy.is_file():  # a rerun reuses what an earlier one decoded
            samples, rate = _decode(path)
            write_audio(copy, resample(to_mono(samples), rate, SAMPLE_RATE), SAMPLE_RATE)
        duration = soundfile.info(str(copy)).duration
    except (soundfile.SoundFileError, OSError, RuntimeError) as e:
        return AudioError(f"cannot read audio file {path}: {e}")
    except AudioError as e:
        return e
    return replace(row, audio=copy, duration=duration, source_rate=rate if rate < SAMPLE_RATE else None)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Samples and rate of `path`: libsndfile's formats directly, the raw telephone formats through ffmpeg."""
    if path.suffix not in _RAW_FORMATS:
        return read_audio(path)
    demuxer, rate = _RAW_FORMATS[path.suffix]
    command = ["ffmpeg", "-nostdin", "-v", "error", "-f", demuxer, "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"]
    result = subprocess.run(command, capture_output=True)
    if result.returncode or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no samples"]
        raise AudioError(f"ffmpeg cannot decode {path} ({reason[0]}); the file is damaged, reinstall its package")
    return np.frombuffer(result.stdout, dtype="<i2").astype(np.float32) / 32768, rate
