"""What ships inside the package: the default model and a few voice prompts to clone.

The default model was trained with the project's own commands on the synthetic corpus
(recipes/default_model.md). The prompts are 3-second recordings of the corpus's
held-out test speakers, which the model never heard, each with its transcript, so
that `valle synthesize "..." --prompt NAME` works offline with nothing else.
"""

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from valle.errors import AudioError, ConfigError

BUNDLED = Path(__file__).parent / "pretrained"
PROMPTS = BUNDLED / "prompts"
PROMPTS_FILE = "prompts.json"


def bundled_models() -> list[str]:
    return sorted(p.name for p in BUNDLED.iterdir() if (p / "valle.json").is_file()) if BUNDLED.is_dir() else []


def model_folder(name_or_dir: str | Path) -> Path:
    """An existing folder as given, else the bundled model of that name."""
    if Path(name_or_dir).is_dir():
        return Path(name_or_dir)
    if str(name_or_dir) in bundled_models():
        return BUNDLED / str(name_or_dir)
    names = ", ".join(bundled_models()) or "none"
    raise ConfigError(f"no model folder or bundled model named {str(name_or_dir)!r} (bundled: {names}); "
                      "give a folder written by VallE.save_pretrained or `valle export`")


@dataclass(frozen=True)
class BundledPrompt:
    name: str
    path: Path
    text: str  # what the recording says
    speaker: str  # the corpus speaker it comes from
    description: str


@functools.cache
def bundled_prompts() -> dict[str, BundledPrompt]:
    """Read once: the file ships with the package (callers must not change the dict)."""
    if not (PROMPTS / PROMPTS_FILE).is_file():
        return {}
    rows = json.loads((PROMPTS / PROMPTS_FILE).read_text(encoding="utf-8"))
    return {name: BundledPrompt(name, PROMPTS / row["file"], row["text"], row["speaker"], row["description"])
            for name, row in rows.items()}


def resolve_prompt(prompt: str | Path, prompt_text: str | None) -> tuple[Path, str | None]:
    """A prompt file as given, or a bundled prompt's file and transcript (unless one is given)."""
    prompts = bundled_prompts()
    if Path(prompt).exists():
        return Path(prompt), prompt_text
    if str(prompt) in prompts:
        bundled = prompts[str(prompt)]
        return bundled.path, prompt_text if prompt_text is not None else bundled.text
    looks_like_a_name = not Path(prompt).suffix and len(Path(prompt).parts) == 1
    close = difflib.get_close_matches(str(prompt), prompts, n=3, cutoff=0.4) if looks_like_a_name else []
    guess = f"did you mean {' or '.join(close)}? " if close else ""
    raise AudioError(f"no audio file or bundled prompt named {str(prompt)!r}: {guess}give a recording (wav, flac, ogg, "
                     "mp3) or a bundled prompt's name (`valle prompts` lists them)")
