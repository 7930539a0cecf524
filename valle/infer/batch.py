"""Many syntheses from one list: a CSV (header `text,prompt[,prompt_text][,out][,language][,prompt_language]`) or
JSONL with those keys (the languages, espeak-ng codes, default to en-us and to the text's).

Prompt paths are relative to the list's folder; a bundled prompt's name works too. Each output is written atomically as
soon as it is ready, and one that already exists is skipped, so a long batch that was
interrupted resumes where it stopped.
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from valle.audio import write_audio
from valle.errors import ConfigError
from valle.infer.bundled import bundled_prompts
from valle.infer.pipeline import SynthesisRequest, VallE
from valle.model.sampling import SamplingConfig
from valle.watermark import SYNTHETIC_COMMENT


@dataclass(frozen=True)
class Request:
    text: str
    prompt: Path | str  # a file, or a bundled prompt's name
    prompt_text: str | None
    out: str
    language: str = "en-us"
    prompt_language: str | None = None


def read_requests(path: str | Path) -> list[Request]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"batch list {path} does not exist")
    if path.suffix == ".jsonl":
        try:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSONL ({e.msg} on line {e.lineno})") from None
    else:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    requests, bundled = [], bundled_prompts()
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("text") or not row.get("prompt"):
            raise ConfigError(f"{path} entry {n} needs a `text` and a `prompt` (columns text,prompt[,prompt_text][,out])")
        prompt = path.parent / row["prompt"]
        requests.append(Request(row["text"], row["prompt"] if not prompt.exists() and row["prompt"] in bundled else prompt,
                                row.get("prompt_text") or None, row.get("out") or f"{n:05d}.wav",
                                row.get("language") or "en-us", row.get("prompt_language") or None))
    if not requests:
        raise ConfigError(f"{path} lists nothing to synthesise")
    return requests


def synthesize_batch(valle: VallE, requests: list[Request], out_dir: str | Path, sampling: SamplingConfig,
                     seed: int | None = None, watermark: bool = True, batch_size: int = 8) -> list[Path]:
    """Synthesise every request into `out_dir`, `batch_size` at a time; request i uses seed `seed + i` when a seed is given.

    A result is the same whatever the batch size (see `VallE.synthesize_many`).
    """
    out_dir = Path(out_dir)
    targets = [out_dir / r.out for r in requests]
    todo = [i for i, target in enumerate(targets) if not target.exists()]
    with tqdm(total=len(requests), initial=len(requests) - len(todo), desc="synthesising", unit="utt") as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            batch = [SynthesisRequest(requests[i].text, requests[i].prompt, requests[i].prompt_text,
                                      None if seed is None else seed + i, language=requests[i].language,
                                      prompt_language=requests[i].prompt_language) for i in chunk]
            for i, result in zip(chunk, valle.synthesize_many(batch, sampling, watermark=watermark, batch_size=batch_size)):
                write_audio(targets[i], result.samples, result.sample_rate, comment=SYNTHETIC_COMMENT)
                bar.update(1)
    return targets
