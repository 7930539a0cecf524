"""Which utterances are spoken from which prompts: the paper's two zero-shot settings.

- cross-sentence: a test utterance's text is spoken from a prompt that is another
  recording of the same speaker. The paper crops 3 s of another utterance and uses its
  aligned transcript; without alignments we take the speaker's whole recording whose
  length is nearest the prompt length, so that the transcript matches the audio exactly.
- continuation: the first seconds of the test utterance itself are the prompt and the
  model is given the whole transcript; it must say the rest.
- cross-lingual (VALL-E X): the cross-sentence prompt, and the text of a test utterance
  in another language of the manifest; the real recording of the speaker's own utterance
  stays as the ground truth of how the speaker sounds.

Test utterances are those of 4-10 s (the paper's LibriSpeech test-clean subset), spread
evenly over the speakers.
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from valle.config import DictConfig
from valle.data.manifest import Utterance
from valle.errors import ConfigError

PAPER_MODES = ("cross-sentence", "continuation")
MODES = (*PAPER_MODES, "cross-lingual")


@dataclass(frozen=True)
class EvalConfig(DictConfig):
    kind = "evaluation config"

    modes: tuple[str, ...] = PAPER_MODES
    prompt_seconds: float = 3.0
    min_seconds: float = 4.0  # test utterances: the paper's 4-10 s
    max_seconds: float = 10.0
    n: int | None = None  # at most this many test utterances (None: all)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(self.modes))  # JSON gives a list
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise ConfigError(f"evaluation modes must be among {', '.join(MODES)}; got {', '.join(self.modes) or 'none'}")
        if not 0 < self.prompt_seconds < self.min_seconds <= self.max_seconds:
            raise ConfigError("need 0 < prompt_seconds < min_seconds <= max_seconds")


@dataclass(frozen=True)
class EvalItem:
    mode: str
    target: Utterance  # what should be said, and how its speaker really says it
    prompt_audio: Path
    prompt_text: str | None  # None in continuation: the model gets the whole transcript
    prompt_seconds: float | None  # continuation: the prompt is this much of the target's start
    prompt_language: str | None = None  # of the prompt's words, where it is not the target's
    spoken: Utterance | None = None  # cross-lingual: the utterance whose text (in its language) is said instead


def plan(rows: list[Utterance], config: EvalConfig) -> list[EvalItem]:
    """Test items in a fixed order: per mode, speakers in turn, each speaker's utterances by id."""
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.id):
        by_speaker[row.speaker].append(row)
    targets: dict[str, list[Utterance]] = {}
    prompts: dict[str, Utterance] = {}
    for speaker, utterances in by_speaker.items():
        prompt = min(utterances, key=lambda r: abs(r.duration - config.prompt_seconds))
        chosen = [r for r in utterances if r is not prompt and config.min_seconds <= r.duration <= config.max_seconds]
        if chosen:
            targets[speaker], prompts[speaker] = chosen, prompt
    if not targets:
        raise ConfigError(f"no speaker has a test utterance of {config.min_seconds:g}-{config.max_seconds:g} s besides "
                          "its prompt; give a manifest with more (or longer) utterances per speaker")
    order = [t for round_ in _round_robin(list(targets.values())) for t in round_]
    order = order[:config.n] if config.n else order
    items = []
    for mode in config.modes:
        for i, target in enumerate(order):
            if mode == "continuation":
                items.append(EvalItem(mode, target, target.audio, None, config.prompt_seconds))
                continue
            prompt = prompts[target.speaker]
            spoken = _in_another_language(order, i) if mode == "cross-lingual" else target
            items.append(EvalItem(mode, target, prompt.audio, prompt.text, None,
                                  prompt.language if prompt.language != spoken.language else None,
                                  None if spoken is target else spoken))
    return items


def _in_another_language(order: list[Utterance], i: int) -> Utterance:
    """The first test utterance after the i-th (in a circle) whose language is not the i-th's."""
    for step in range(1, len(order)):
        other = order[(i + step) % len(order)]
        if other.language != order[i].language:
            return other
    raise ConfigError(f"the cross-lingual setting needs test utterances in two languages at least; all are in "
                      f"{order[i].language}")


def _round_robin(lists: list[list[Utterance]]) -> list[list[Utterance]]:
    """[[a1, b1, c1], [a2, b2], ...]: one utterance per speaker per round."""
    return [[lst[i] for lst in lists if i < len(lst)] for i in range(max(map(len, lists)))]
