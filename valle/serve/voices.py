"""Saved voices: a prompt recording and its transcript, stored once and used by id.

Each voice is a folder `<data_dir>/voices/<id>/` with `prompt.wav` and `voice.json`. Ids
are random hex strings made here and checked against that form before any path is
built, so nothing a request sends can name a file outside the data directory. The
bundled prompts are listed too (by name), read-only.
"""

import json
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from valle.audio import audio_duration, write_audio
from valle.errors import ValleError
from valle.files import atomic_write
from valle.infer.bundled import bundled_prompts

_ID = re.compile(r"[0-9a-f]{32}")


class VoiceNotFound(ValleError):
    pass


class VoiceReadOnly(ValleError):
    pass


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    transcript: str | None
    seconds: float
    bundled: bool
    prompt_check: dict | None = None  # what `POST /v1/prompt/check` found when it was saved


class VoiceStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).resolve() / "voices"
        self.root.mkdir(parents=True, exist_ok=True)
        self._bundled = {p.name: (Voice(p.name, p.description, p.text, round(audio_duration(p.path), 2), True), p.path)
                         for p in bundled_prompts().values()}

    def add(self, samples: np.ndarray, sample_rate: int, name: str, transcript: str | None,
            prompt_check: dict | None = None) -> Voice:
        voice = Voice(uuid.uuid4().hex, name, transcript, round(len(samples) / sample_rate, 2), False, prompt_check)
        folder = self.root / voice.id
        write_audio(folder / "prompt.wav", samples, sample_rate)
        with atomic_write(folder / "voice.json") as f:  # written last: a voice without it is not listed
            json.dump(asdict(voice), f)
        return voice

    def list(self) -> list[Voice]:
        bundled = [voice for voice, _ in self._bundled.values()]
        saved = [Voice(**json.loads(f.read_text())) for f in sorted(self.root.glob("*/voice.json"))]
        return bundled + saved

    def get(self, voice_id: str) -> tuple[Voice, Path]:
        """The voice and its prompt file."""
        if voice_id in self._bundled:
            return self._bundled[voice_id]
        folder = self._folder(voice_id)
        return Voice(**json.loads((folder / "voice.json").read_text())), folder / "prompt.wav"

    def delete(self, voice_id: str) -> None:
        if voice_id in self._bundled:
            raise VoiceReadOnly(f"voice {voice_id!r} ships with valle and cannot be deleted")
        shutil.rmtree(self._folder(voice_id))

    def _folder(self, voice_id: str) -> Path:
        if not _ID.fullmatch(voice_id) or not (self.root / voice_id / "voice.json").is_file():
            raise VoiceNotFound(f"no voice with id {voice_id!r}; GET /v1/voices lists them")
        return self.root / voice_id

