"""What the AR and NAR stages share: their opening layers, their output, and their folder.

A stage folder is self-describing: `config.json` names the stage, its model config, the
phoneme vocabulary it was trained with, the codec whose codes it models and the valle
version, so that it can never be paired with the wrong vocabulary or codec.
"""

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle import __version__
from valle.codec.record import CodecRecord
from valle.errors import ConfigError
from valle.model.config import ModelConfig
from valle.model.layers import SinusoidalPositions, init_weights, top_k_accuracy
from valle.pretrained import CONFIG_FILE, load_weights, read_config, save_folder, weights_dtype
from valle.text.vocab import PhonemeVocab

IGNORE = -100  # a target that nothing predicts (padding, the rest of a group)


@dataclass
class StageOutput:
    loss: Tensor
    accuracy: Tensor  # top-10
    logits: Tensor  # [..., V(+1)]
    targets: Tensor  # logits' shape without the last dim; IGNORE where nothing is predicted
    levels: Tensor  # targets' shape: the 0-based codebook level of each target
    advances: tuple[Tensor, Tensor] | None = None  # a phoneme pointer's (logits [..., A], targets), where there is one

    @classmethod
    def scored(cls, logits: Tensor, targets: Tensor, levels: Tensor, weights: Tensor | None = None) -> Self:
        """The cross-entropy and top-10 accuracy (the paper's) of `logits` on the targets that are not IGNORE;
        with `weights` (targets' shape), the loss is their weighted mean."""
        flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        if weights is None:
            loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE)
        else:
            weights = weights.reshape(-1).to(flat_logits.dtype) * (flat_targets != IGNORE)
            losses = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE, reduction="none")
            loss = (losses * weights).sum() / weights.sum().clamp(min=1e-9)
        return cls(loss, top_k_accuracy(logits, targets, 10, IGNORE), logits, targets, levels)

    def with_advances(self, logits: Tensor, targets: Tensor) -> Self:
        """This output with a phoneme pointer's advances scored too: their cross-entropy joins the loss."""
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)
        return replace(self, loss=self.loss + loss, advances=(logits, targets))

    @torch.no_grad()
    def advance_sums(self) -> tuple[float, float, int]:
        """The advances' (summed cross-entropy in nats, exact hits, targets); zeros without a pointer."""
        if self.advances is None:
            return 0.0, 0.0, 0
        logits, targets = self.advances[0].reshape(-1, self.advances[0].shape[-1]).float(), self.advances[1].reshape(-1)
        valid = targets != IGNORE
        losses = F.cross_entropy(logits[valid], targets[valid], reduction="sum")
        return float(losses), float((logits[valid].argmax(-1) == targets[valid]).sum()), int(valid.sum())

    @torch.no_grad()
    def level_sums(self) -> dict[int, tuple[float, float, int]]:
        """Per 0-based level: (summed cross-entropy in nats, top-10 hits, targets), to average over many batches."""
        logits, targets = self.logits.reshape(-1, self.logits.shape[-1]).float(), self.targets.reshape(-1)
        levels, valid = self.levels.reshape(-1), targets != IGNORE
        losses = F.cross_entropy(logits, targets.clamp(min=0), reduction="none")
        hits = (logits.topk(min(10, logits.shape[-1]), dim=-1).indices == targets[:, None]).any(-1)
        sums = {}
        for level in levels[valid].unique().tolist():
            rows = valid & (levels == level)
            sums[level] = (float(losses[rows].sum()), float(hits[rows].sum()), int(rows.sum()))
        return sums


@dataclass(frozen=True)
class TrainedOn:
    """The phoneme vocabulary and the codec a stage was trained on: the only ones it speaks."""

    vocab: PhonemeVocab
    codec: CodecRecord


class Stage(nn.Module):
    """The phonemes' embedding and positions, the audio's positions and the dropout that both stages open with."""

    kind: ClassVar[str]  # "ar", "nar" or "frames": the stage a folder names
    uses_positions: ClassVar[bool] = True  # sinusoidal positions of text and audio (the transformers' stages)
    kinds: ClassVar[dict[str, type["Stage"]]] = {}  # each stage by its kind, filled as the stages' classes are defined

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Stage.kinds[cls.kind] = cls

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding_scale = math.sqrt(config.d_model) if config.scale_embeddings else 1.0
        self.text_embedding = nn.Embedding(config.n_phonemes, config.d_model)
        # One row per language, and a last row for none (padding, or a language left unsaid), held at zero.
        self.language_embedding = (nn.Embedding(len(config.languages) + 1, config.d_model, padding_idx=len(config.languages))
                                   if config.languages else None)
        if self.uses_positions:
            self.text_positions = SinusoidalPositions(config.d_model)
            self.audio_positions = SinusoidalPositions(config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.trained_on: TrainedOn | None = None  # known once loaded from a folder

    @property
    def reads_alignment(self) -> bool:
        """Whether the stage trains on each frame's phoneme (`valle data align`)."""
        return self.config.phoneme_pointer

    def _embed_text(self, phonemes: Tensor, languages: Tensor | None = None) -> Tensor:
        """Phonemes `[B, P]` -> `[B, P, d]`, each with the embedding of its language (`[B, P]` ids) where the stage takes one."""
        x = self.text_embedding(phonemes)
        if self.language_embedding is not None:
            x = x + self.language_embedding(self.no_language(phonemes) if languages is None else languages)
        return self.text_positions(x * self.embedding_scale)

    def no_language(self, like: Tensor) -> Tensor:
        """Ids of "no language" in `like`'s shape: what padding, and text whose language is not said, carry."""
        return torch.full_like(like, len(self.config.languages))

    def language_id(self, language: str) -> int:
        """The id of `language` in this stage's embedding; a language it was not trained on is refused."""
        try:
            return self.config.languages.index(language)
        except ValueError:
            known = ", ".join(self.config.languages) or "none: it takes no language input"
            raise ConfigError(f"this model was not trained on language {language!r}; it knows {known}") from None

    def init_weights(self) -> None:
        """GPT-style initial weights; the languages start at zero, so that a stage warm-started from one that
        took no language reads text as that one did."""
        self.apply(init_weights)
        if self.language_embedding is not None:
            nn.init.zeros_(self.language_embedding.weight)

    def save_pretrained(self, directory: str | Path, trained_on: TrainedOn, dtype: torch.dtype = torch.float32) -> Path:
        """Write the folder `from_pretrained` reads; `dtype=torch.float16` halves it (it loads back as float32)."""
        config = {"stage": self.kind, "model": self.config.to_dict(), "vocab": trained_on.vocab.to_dict(),
                  "codec": trained_on.codec.to_dict(), "valle_version": __version__}
        return save_folder(directory, config, self.state_dict(), {"stage": self.kind}, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype | str = torch.float32) -> Self:
        """The stage saved in `directory` (in eval mode, weights in `dtype`), with what it was `trained_on`.

        `Stage.from_pretrained` reads either stage; `ARModel.from_pretrained` only an AR stage, and so on.
        """
        values = read_config(directory, "trained stage", "train one with `valle train`")
        dtype = weights_dtype(dtype, device)
        stage = Stage.kinds.get(values.get("stage"))
        if stage is None or not issubclass(stage, cls):
            expected = ", ".join(map(repr, sorted(Stage.kinds))) if cls is Stage else repr(cls.kind)
            raise ConfigError(f"{Path(directory) / CONFIG_FILE} names stage {values.get('stage')!r}; expected {expected}")
        model = stage(ModelConfig.from_dict(values["model"]))
        load_weights(model, directory)
        model.trained_on = TrainedOn(PhonemeVocab.from_dict(values["vocab"]), CodecRecord.from_dict(values["codec"]))
        return model.to(device, dtype).eval()
