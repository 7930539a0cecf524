"""A frozen phoneme classifier that tells the frame stage, as it learns, which of its frames say another phoneme.

The frame stage regresses each frame's latent. A latent as near the truth as another may yet
quantise to codes that say another phoneme, and a latent loss cannot tell the two apart. A
frame aligner (`valle.model.aligner`), trained to read each frame's phoneme from its codes,
can: it reads the stage's latent as soft codes (`FrameModel.soft_codes`), and the cross-entropy
of each frame's phoneme in the training alignment joins the stage's loss, weighted by
`TrainConfig.phoneme_loss` (the phone-level supervision NaturalSpeech 3 gives its content codes,
here through a fixed reader). The classifier does not learn and is not saved with the stage.
"""

from pathlib import Path
from typing import Self

import torch
import torch.nn.functional as F
from torch import Tensor

from valle.data.shards import JoinedCorpus, TokenizedCorpus
from valle.model.aligner import FrameAligner
from valle.model.frames import FrameModel
from valle.model.layers import lengths_to_mask
from valle.train.align import load_aligner_for, shipped_aligner


class PhonemeTeacher:
    def __init__(self, aligner: FrameAligner, levels: int | None = None) -> None:
        """`levels`: how many of the first codec levels the loss reaches the latent through (all by default)."""
        self.aligner = aligner.eval().requires_grad_(False)
        self.levels = levels

    @classmethod
    def for_corpus(cls, corpus: TokenizedCorpus | JoinedCorpus, folder: str | Path | None = None,
                   levels: int | None = None) -> Self:
        """The aligner in `folder` (by default the one that ships for the corpus's codec), refused unless it reads the
        corpus's codes and phoneme ids."""
        folder = folder or shipped_aligner(corpus.codec)
        return cls(load_aligner_for(folder, corpus, "the training data"), levels)

    def to(self, device: torch.device) -> Self:
        self.aligner.to(device)
        return self

    def loss(self, stage: FrameModel, latent: Tensor, phonemes: Tensor, alignment: Tensor, code_lens: Tensor,
             taught: Tensor | None = None) -> Tensor:
        """The cross-entropy of each frame's phoneme (`phonemes` `[B, P]` at the frame's `alignment` `[B, T]`) as the
        classifier reads the stage's `latent` `[B, T, D]`, over the `code_lens` `[B]` frames of each utterance (of
        those `taught` `[B]`, where given; 0 when none is)."""
        valid = lengths_to_mask(code_lens, latent.shape[1])
        if taught is not None:
            valid = valid & taught[:, None]
        if not valid.any():
            return latent.sum() * 0  # a loss of 0 that keeps the graph's shape on every rank
        x = latent.new_zeros(*valid.shape, self.aligner.config.channels, dtype=torch.float32)
        x[valid] = self.aligner.embed_soft(*stage.soft_codes(latent[valid], gradient_levels=self.levels))  # no padding
        logits = self.aligner.classify(x, code_lens)
        return F.cross_entropy(logits[valid].float(), phonemes.gather(1, alignment)[valid])
