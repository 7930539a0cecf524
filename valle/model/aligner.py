"""A frame classifier that aligns phonemes to codec frames: which phoneme each frame speaks.

The phoneme pointer of the AR stage is trained on these alignments, so their accuracy
bounds what the pointer can teach. An AR stage's attention gives them without another
model, but coarsely: on espeak-ng speech, whose word start times the synthesiser reports,
its word starts were a third of the time more than 100 ms off (benchmarks/alignment_accuracy.py).
This model classifies each frame's phoneme from its codes and a few frames around them,
and the best monotonic path through its scores over the utterance's phonemes is the
alignment (a hybrid HMM aligner's Viterbi step, `valle.model.alignment.monotonic_path`).

The codes of all levels are embedded and summed, then normalised per utterance and
channel over time (cepstral mean and variance normalisation, learnt): what is left is
less the voice and more what it says. Trained by `valle.train.align.train_aligner`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle import __version__
from valle.codec.record import CodecRecord
from valle.config import DictConfig
from valle.errors import ConfigError
from valle.model.alignment import monotonic_path
from valle.model.layers import lengths_to_mask
from valle.model.stage import TrainedOn
from valle.pretrained import load_weights, read_config, save_folder
from valle.text.vocab import PhonemeVocab


@dataclass(frozen=True)
class AlignerConfig(DictConfig):
    """Sizes of the frame classifier; `n_phonemes` and the codec's sizes come from the corpus it aligns."""

    kind = "aligner config"

    n_phonemes: int = 128
    n_codebooks: int = 8
    codebook_size: int = 1024
    channels: int = 256
    layers: int = 3
    kernel: int = 5  # frames seen around each frame: layers * (kernel - 1) + 1

    def __post_init__(self) -> None:
        if self.channels < 1 or self.layers < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"an aligner needs channels and layers >= 1 and an odd kernel, got {self.channels}, "
                              f"{self.layers}, {self.kernel}")


class FrameAligner(nn.Module):
    def __init__(self, config: AlignerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embeddings = nn.ModuleList(nn.Embedding(c.codebook_size, c.channels) for _ in range(c.n_codebooks))
        self.norm_gain = nn.Parameter(torch.ones(c.channels))
        self.norm_bias = nn.Parameter(torch.zeros(c.channels))
        self.convolutions = nn.ModuleList(nn.Conv1d(c.channels, c.channels, c.kernel, padding=c.kernel // 2)
                                          for _ in range(c.layers))
        self.output = nn.Conv1d(c.channels, c.n_phonemes, 1)
        # log p(phoneme) over the training frames: the path divides it out of the posteriors (scaled likelihoods),
        # so that frequent phonemes do not take the frames of rare ones
        self.register_buffer("log_prior", torch.full((c.n_phonemes,), -float(np.log(c.n_phonemes))))
        self.trained_on: TrainedOn | None = None

    @torch.no_grad()
    def start_from_codebooks(self, codebooks: Tensor, generator: torch.Generator | None = None) -> None:
        """Embed each level's codes as the codec's own vectors (`[K, V, D]`) under one random map to `channels`.

        The sum over levels is then the codec's quantised latent, mapped: the classifier starts from
        what the codec knows of each frame instead of from noise, and learns several times faster.
        """
        mapping = torch.randn(codebooks.shape[2], self.config.channels, generator=generator) / codebooks.shape[2] ** 0.5
        for embedding, codebook in zip(self.embeddings, codebooks.float()):
            embedding.weight.copy_(codebook @ mapping)

    def forward(self, codes: Tensor, code_lens: Tensor) -> Tensor:
        """Codes `[B, K, T]` (padded; `code_lens` `[B]`) -> phoneme logits `[B, T, n_phonemes]`."""
        return self.classify(sum(embedding(codes[:, level]) for level, embedding in enumerate(self.embeddings)), code_lens)

    def classify(self, x: Tensor, code_lens: Tensor) -> Tensor:
        """Summed code embeddings `[B, T, C]` -> phoneme logits `[B, T, n_phonemes]`: what `forward` does after the
        embedding lookup, so that embeddings mixed by soft code weights (a path a gradient takes) are read too."""
        valid = lengths_to_mask(code_lens, x.shape[1])[..., None].to(x.dtype)
        n = valid.sum(1, keepdim=True).clamp(min=1)
        mean = (x * valid).sum(1, keepdim=True) / n
        std = (((x - mean) ** 2 * valid).sum(1, keepdim=True) / n).add(1e-5).sqrt()
        h = (((x - mean) / std * self.norm_gain + self.norm_bias) * valid).transpose(1, 2)  # [B, C, T]
        for convolution in self.convolutions:
            h = h + F.gelu(convolution(h)) * valid.transpose(1, 2)
        return self.output(h).transpose(1, 2)

    @torch.no_grad()
    def path(self, phonemes: Tensor, codes: Tensor, silent: Tensor | None = None) -> Tensor:
        """`[T]`: the phoneme (index into `phonemes` `[P]`) of each frame of `codes` `[K, T]`.

        `silent` `[P]`: the phonemes that may take no frame (`PhonemeVocab.silent`); every other one gets one.
        """
        logits = self(codes[None], torch.tensor([codes.shape[1]], device=codes.device))[0].float()
        scores = (logits.log_softmax(-1) - self.log_prior)[:, phonemes].cpu().numpy()
        return torch.from_numpy(monotonic_path(scores, silent=None if silent is None else silent.cpu().numpy()))

    def save_pretrained(self, directory: str | Path, trained_on: TrainedOn) -> Path:
        config = {"aligner": self.config.to_dict(), "vocab": trained_on.vocab.to_dict(),
                  "codec": trained_on.codec.to_dict(), "valle_version": __version__}
        return save_folder(directory, config, self.state_dict(), {"aligner": "frames"})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Self:
        values = read_config(directory, "phoneme aligner", "train one with `valle data train-aligner`")
        if "aligner" not in values:
            raise ConfigError(f"{directory} holds no phoneme aligner (its config.json has no 'aligner'); train one "
                              "with `valle data train-aligner`")
        model = cls(AlignerConfig.from_dict(values["aligner"]))
        load_weights(model, directory)
        model.trained_on = TrainedOn(PhonemeVocab.from_dict(values["vocab"]), CodecRecord.from_dict(values["codec"]))
        return model.eval()
