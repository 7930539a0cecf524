"""Choosing codes: the AR's next token (temperature, top-k, top-p, VALL-E 2's repetition-aware
sampling) and the NAR's codes of a whole level at once.

Plain nucleus sampling lets a codec language model fall into loops (a token
repeated until the length cap) because repeated frames make themselves more likely.
Repetition-aware sampling (Chen et al., 2024) samples from the nucleus, and if the
chosen token already fills more than `ras_threshold` of the last `ras_window`
tokens, samples again from the whole distribution instead.

The NAR stage fills its levels greedily in the paper. Its top levels carry fine detail
that it predicts poorly, and there the likeliest code is often far from the true one:
`NearestInExpectation` takes the code the codec's decoder misses by least on average.
"""

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from valle.config import DictConfig
from valle.errors import ConfigError

NAR_DECODINGS = ("nearest", "greedy")


@dataclass(frozen=True)
class SamplingConfig(DictConfig):
    """How codes are chosen. A model folder keeps the settings chosen for it on held-out speakers
    (`VallE.sampling`); these defaults serve a model saved without them."""

    kind = "sampling config"

    temperature: float = 1.0
    # top-k 25 and top-p 0.8 (VALL-E 2's and CosyVoice's) beat plain sampling on the validation
    # speakers: fewer words lost, the voice kept as well (recipes/tournament.md).
    top_k: int = 25  # 0: no limit
    top_p: float = 0.8
    repetition_aware: bool = True
    ras_window: int = 10
    ras_threshold: float = 0.1
    # The AR's levels above the first (models with ar_levels > 1): None samples them as level 1;
    # a number samples them at that temperature (0: greedy) without the repetition check.
    upper_temperature: float | None = None
    # How the NAR stage turns a level's distributions into codes: "nearest" (`NearestInExpectation`)
    # or "greedy", the likeliest code (the paper's choice).
    nar_decoding: str = "nearest"
    # Classifier-free guidance on the text (the AR, for a model trained with `text_dropout`): each
    # level's logits given no text, pushed this many times as far as the text moves them; 1: none.
    guidance: float = 1.0
    # The same on the voice prompt (the AR): the logits given the target's phonemes alone, pushed this many
    # times as far as the prompt moves them; 1: none.
    prompt_guidance: float = 1.0
    # The frame stage: how far each latent dimension's spread over time moves from the stage's own (an average's,
    # too even) toward the prompt's: 0 keeps the stage's, 1 takes the prompt's (`valle.model.frames.match_variance`).
    variance: float = 1.0
    # The frame stage: how far its speaking rate moves from its own toward the prompt's, read off the prompt's words
    # (`valle.model.frames.FrameModel.prompt_pace`): 0 keeps the stage's, 1 takes the prompt's. Without the prompt's
    # transcript, the stage's own.
    rate: float = 1.0
    # The frame stage: how many times as fast as that rate it speaks (0.8: a fifth slower, each phoneme held longer).
    speed: float = 1.0
    # The frame stage: render again in a voice moved past the prompt's by this many times what the first rendering
    # fell short of it, as the stage's voice encoder reads both (`valle.model.frames.FrameModel.render`); 0: once.
    voice_feedback: float = 0.0
    # The frame stage, where the prompt's words are known: every latent moved by the affine map that takes the stage's
    # rendering of the prompt's own words nearest the prompt (`valle.model.frames.FrameModel.prompt_map`), free to move
    # from the identity by this much (the inverse of its ridge weight); 0: no map. 0.1 keeps more of the voice for a
    # few words; 1 learns the prompt's accent too (recipes/tournament.md).
    prompt_map: float = 0.0
    # The frame stage, where the prompt's words are known: every latent also moved by this share of what the prompt's
    # real latents differ from that rendering at the prompt frames nearest it (`valle.model.frames.PromptMap`);
    # 0: none. More of a voice the stage has not heard, for some of its words: at 0.25 test SIM +0.013 for 3.5 points
    # of WER, at 0.5 the held-out people's SIM 0.58 to 0.66 and 15 points of test WER (recipes/tournament.md).
    prompt_neighbours: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError(f"temperature must be a finite number >= 0 (0 is greedy), got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0 keeps every token), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.upper_temperature is not None and (not math.isfinite(self.upper_temperature) or self.upper_temperature < 0):
            raise ConfigError(f"upper_temperature must be a finite number >= 0 (0 is greedy), got {self.upper_temperature}")
        if self.ras_window < 1 or not 0 <= self.ras_threshold <= 1:
            raise ConfigError("ras_window must be >= 1 and ras_threshold in [0, 1]")
        if not math.isfinite(self.variance) or not 0 <= self.variance <= 2:
            raise ConfigError(f"variance must be in [0, 2] (0: the frame stage's own spread, 1: the prompt's), got {self.variance}")
        if not math.isfinite(self.rate) or not 0 <= self.rate <= 1:
            raise ConfigError(f"rate must be in [0, 1] (0: the frame stage's own speaking rate, 1: the prompt's), got {self.rate}")
        if not math.isfinite(self.speed) or not 0.5 <= self.speed <= 2:
            raise ConfigError(f"speed must be in [0.5, 2] (1: the speaking rate `rate` sets), got {self.speed}")
        if not math.isfinite(self.voice_feedback) or not 0 <= self.voice_feedback <= 3:
            raise ConfigError(f"voice_feedback must be in [0, 3] (0: rendered once), got {self.voice_feedback}")
        if not math.isfinite(self.prompt_map) or not 0 <= self.prompt_map <= 10:
            raise ConfigError(f"prompt_map must be in [0, 10] (how far the map toward the prompt may move from the "
                              f"identity; 0: no map), got {self.prompt_map}")
        if not math.isfinite(self.prompt_neighbours) or not 0 <= self.prompt_neighbours <= 1:
            raise ConfigError(f"prompt_neighbours must be in [0, 1] (the share of the nearest prompt frames' residual "
                              f"each frame takes; 0: none), got {self.prompt_neighbours}")
        for name in ("guidance", "prompt_guidance"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be a finite number >= 0 (1: none), got {getattr(self, name)}")
        if self.nar_decoding not in NAR_DECODINGS:
            raise ConfigError(f"nar_decoding must be one of {', '.join(NAR_DECODINGS)}, got {self.nar_decoding!r}")

    def updated(self, **changes: object) -> "SamplingConfig":
        """These settings with those of `changes` that are given (not None): options over a model's defaults."""
        return replace(self, **{name: value for name, value in changes.items() if value is not None})


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set to -inf every logit outside the `top_k` largest and outside the smallest set with mass >= `top_p`.

    The most likely token always survives, so the result is never all -inf.
    """
    logits = logits.clone()
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = logits.sort(descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        outside = cumulative - sorted_logits.softmax(-1) >= top_p  # mass before this token already enough
        outside[..., 0] = False  # a top_p below float32's range rounds to 0, and 0 >= 0 would drop even the best token
        logits[order[outside]] = float("-inf")
    return logits


class Sampler:
    """`sampler(logits [V], history) -> token`; seeded, so a generation is reproducible."""

    def __init__(self, config: SamplingConfig = SamplingConfig(), seed: int | None = None) -> None:
        self.config = config
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def _draw(self, logits: Tensor, temperature: float) -> int:
        if temperature == 0:
            return int(logits.argmax())
        logits = logits.double()  # shifted so that the best is 0: no overflow however small the temperature
        probabilities = ((logits - logits.max()) / temperature).softmax(-1).cpu()
        return int(torch.multinomial(probabilities, 1, generator=self.generator))

    def __call__(self, logits: Tensor, history: list[int], level: int = 0) -> int:
        """The next code of `level` (0: level 1) given that level's `history`; at a negative level, a phoneme
        pointer's advance, drawn from the stage's distribution as it is (`valle.model.ar`)."""
        c = self.config
        if level < 0:
            return self._draw(logits, 1.0)
        if level and c.upper_temperature is not None:
            return self._draw(filter_logits(logits, c.top_k, c.top_p), c.upper_temperature)
        token = self._draw(filter_logits(logits, c.top_k, c.top_p), c.temperature)
        if c.repetition_aware and history:
            window = history[-c.ras_window:]
            if window.count(token) / c.ras_window > c.ras_threshold:
                token = self._draw(logits, c.temperature)
        return token


class NearestInExpectation:
    """`choose(logits [T, V], level) -> codes [T]`: per frame, the code nearest on average to the true one.

    The codec's decoder hears the sum of the chosen codes' vectors (`codebooks`,
    `[K, V, D]`). The code v that minimises the expected squared distance to the true
    vector is argmin |e_v|^2 - 2 e_v . E[e]: the likeliest code when the distribution is
    sharp, and a code near the level's small vectors (close to leaving the level out)
    when it is flat, where a confident-looking wrong code would add a full vector of error.
    """

    def __init__(self, codebooks: Tensor) -> None:
        self.codebooks = codebooks.float()
        self.norms = self.codebooks.pow(2).sum(-1)  # [K, V]

    def __call__(self, logits: Tensor, level: int) -> Tensor:
        book = self.codebooks[level]
        expected = logits.float().softmax(-1) @ book  # [T, D]
        return (self.norms[level] - 2 * expected @ book.T).argmin(-1)
