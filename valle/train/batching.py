"""Duration-bucketed dynamic batches: utterances of similar length, up to a token budget.

Sorting by length before cutting batches keeps padding small; the budget counts the
tokens a batch really costs (phonemes + frames, times the longest of each), so short
utterances come in large batches and long ones in small batches. Batch order is
shuffled per epoch from the seed. Under DDP each rank takes every world-size-th
batch, so ranks never see the same utterance in an epoch. The position within the
epoch is part of the state, so an interrupted run resumes with the very next batch.
"""

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from valle.data.shards import JoinedCorpus, TokenizedCorpus, TokenizedUtterance
from valle.errors import ConfigError
from valle.model.frames import voice_slices
from valle.model.stage import Stage


@dataclass
class SamplerState:
    epoch: int = 0
    position: int = 0


class BucketBatchSampler:
    def __init__(self, n_phonemes: list[int], n_frames: list[int], max_tokens: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, max_frames: int | None = None) -> None:
        cost = [p + f for p, f in zip(n_phonemes, n_frames)]
        keep = [i for i, f in enumerate(n_frames) if max_frames is None or f <= max_frames]
        too_long = [i for i in keep if cost[i] > max_tokens]
        if too_long:
            raise ConfigError(f"{len(too_long)} utterance(s) cost more than max_tokens={max_tokens} "
                              f"(the longest: {max(cost[i] for i in too_long)} phonemes + frames); "
                              "raise max_tokens or set max_frames to leave them out")
        if not keep:
            raise ConfigError("no utterance to train on (all are longer than max_frames?)")
        order = sorted(keep, key=lambda i: (n_frames[i], n_phonemes[i], i))
        self.batches: list[list[int]] = []
        current: list[int] = []
        longest_p = longest_f = 0
        for i in order:
            p, f = max(longest_p, n_phonemes[i]), max(longest_f, n_frames[i])
            if current and (len(current) + 1) * (p + f) > max_tokens:
                self.batches.append(current)
                current, p, f = [], n_phonemes[i], n_frames[i]
            current.append(i)
            longest_p, longest_f = p, f
        self.batches.append(current)
        if len(self.batches) < world_size:
            raise ConfigError(f"{len(self.batches)} batches cannot feed {world_size} processes; lower max_tokens")
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.state = SamplerState()

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of `epoch`: a seeded shuffle, cut to a whole number per rank."""
        order = list(range(len(self.batches)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        per_rank = len(order) // self.world_size
        return [self.batches[b] for b in order[self.rank::self.world_size][:per_rank]]

    def next_batch(self) -> list[int]:
        """The next batch, moving to the next epoch when this one is used up."""
        batches = self.epoch_batches(self.state.epoch)
        if self.state.position >= len(batches):
            self.state = SamplerState(self.state.epoch + 1, 0)
            batches = self.epoch_batches(self.state.epoch)
        self.state.position += 1
        return batches[self.state.position - 1]


class OtherUtterances:
    """Another utterance of the same speaker for each one: a voice prompt recorded apart from the speech it conditions.

    Synthesis reads the voice off another recording than the one it speaks (VALL-E's cross-sentence setting); a prompt
    cut from the utterance itself also carries that utterance's words, melody and recording, which a stage may learn
    to lean on and will never be given."""

    def __init__(self, speakers: list[str]) -> None:
        self.speakers = speakers
        self.groups: dict[str, list[int]] = {}
        for position, speaker in enumerate(speakers):
            self.groups.setdefault(speaker, []).append(position)

    def pick(self, position: int, generator: torch.Generator) -> int:
        """One of the other utterances of `position`'s speaker, uniformly; `position` itself if it has none."""
        group = self.groups[self.speakers[position]]
        if len(group) == 1:
            return position
        chosen = group[int(torch.randint(0, len(group) - 1, (), generator=generator))]
        return group[-1] if chosen == position else chosen


def voice_prompts(corpus: TokenizedCorpus | JoinedCorpus, positions: list[int], codes: Tensor, code_lens: Tensor,
                  pitch: Tensor | None, stage: Stage, max_frames: int, generator: torch.Generator,
                  others: OtherUtterances | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """The frame stage's prompts for the utterances of `corpus` at `positions` (`voice_slices`): cut from the utterances
    themselves (`codes`, `code_lens`, `pitch`, collated from them), or with `others` from another utterance of each
    one's speaker."""
    if others is not None:
        voices = [corpus[others.pick(i, generator)] for i in positions]
        _, _, codes, code_lens = (t.to(codes.device) for t in collate(voices))
        pitch = collate_pitch(voices, stage, codes.shape[2], codes.device)
    return voice_slices(codes, code_lens, max_frames, generator, pitch)


def folder_positions(corpus: TokenizedCorpus | JoinedCorpus, folders: list[str | Path]) -> Tensor:
    """`[N]` bool: which of the corpus's utterances lie in one of `folders` (each one of the folders it joins)."""
    parts = corpus.parts if isinstance(corpus, JoinedCorpus) else [corpus]
    joined = [Path(part.directory).resolve() for part in parts]
    for folder in folders:
        if Path(folder).resolve() not in joined:
            raise ConfigError(f"teacher_data names {folder}, which is not one of the training folders "
                              f"({', '.join(str(part.directory) for part in parts)}); name it as --data does")
    named = {Path(folder).resolve() for folder in folders}
    return torch.tensor([path in named for path, part in zip(joined, parts) for _ in range(len(part))])


def collate(items: list) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad utterances into (phonemes [B, P], phoneme_lens, codes [B, K, T], code_lens)."""
    phoneme_lens = torch.tensor([len(u.phonemes) for u in items])
    code_lens = torch.tensor([u.codes.shape[1] for u in items])
    phonemes = torch.zeros(len(items), int(phoneme_lens.max()), dtype=torch.long)
    codes = torch.zeros(len(items), items[0].codes.shape[0], int(code_lens.max()), dtype=torch.long)
    for b, u in enumerate(items):
        phonemes[b, :len(u.phonemes)] = u.phonemes
        codes[b, :, :u.codes.shape[1]] = u.codes
    return phonemes, phoneme_lens, codes, code_lens


def _collate_track(tracks: list[Tensor], width: int, dtype: torch.dtype, device: torch.device | str) -> Tensor:
    batch = torch.zeros(len(tracks), width, dtype=dtype)
    for b, track in enumerate(tracks):
        batch[b, :len(track)] = track
    return batch.to(device)


def collate_alignments(items: list, stage: Stage, width: int, device: torch.device | str = "cpu") -> Tensor | None:
    """`[B, width]` on `device`: each frame's phoneme index, for a stage that reads it (else None).

    A stage that reads alignments given unaligned data is refused by the stage itself, with the fix.
    """
    if not stage.reads_alignment or any(u.alignment is None for u in items):
        return None
    return _collate_track([u.alignment for u in items], width, torch.long, device)


def collate_pitch(items: list, stage: Stage, width: int, device: torch.device | str = "cpu") -> Tensor | None:
    """`[B, width]` on `device`: each frame's F0 in Hz (0: unvoiced, and padding), for a stage told the pitch (else
    None). A stage told the pitch given data without pitch tracks is refused by the stage itself, with the fix."""
    if not stage.config.pitch or any(u.pitch is None for u in items):
        return None
    return _collate_track([u.pitch for u in items], width, torch.float32, device)


def utterance_languages(utterance: TokenizedUtterance, stage: Stage, device: torch.device | str = "cpu") -> Tensor | None:
    """`[P]`: one utterance's phoneme language ids in `stage` (`phoneme_languages` of it alone), or None."""
    languages = phoneme_languages([utterance], stage, len(utterance.phonemes), device)
    return None if languages is None else languages[0]


def read_accents(path: str | Path) -> dict[str, str]:
    """A training config's `accents` file: {speaker: accent}, checked."""
    try:
        accents = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"accents: cannot read {path} as JSON ({error}); it names each speaker's accent, "
                          "{\"speaker\": \"en-029\", ...}") from None
    if not isinstance(accents, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in accents.items()):
        raise ConfigError(f"accents: {path} must be one JSON object of speaker names to accent names")
    return accents


def speaker_accents(items: list, stage: Stage, accent_of: dict[str, str], device: torch.device | str = "cpu") -> Tensor:
    """`[B]` on `device`: each utterance's speaker's accent in `accent_of`, as an index into the stage's
    `config.accents`; -1 where it names none."""
    ids = [stage.config.accents.index(accent_of[u.speaker]) if u.speaker in accent_of else -1 for u in items]
    return torch.tensor(ids, dtype=torch.long, device=device)


def phoneme_languages(items: list, stage: Stage, width: int, device: torch.device | str = "cpu") -> Tensor | None:
    """`[B, width]` on `device`: each phoneme's language id in `stage`, or None for a stage that takes no language.

    Padding, and an utterance in a language the stage does not know (a held-out speaker's), carry "no language".
    """
    if stage.language_embedding is None:
        return None
    languages = stage.no_language(torch.zeros(len(items), width, dtype=torch.long))
    for b, u in enumerate(items):
        if u.language in stage.config.languages:
            languages[b, :len(u.phonemes)] = stage.language_id(u.language)
    return languages.to(device)
