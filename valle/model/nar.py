"""The non-autoregressive stage: the codebook levels above the AR's, each predicted for all frames at once.

Input: the phonemes, then the prompt as the sum of the embeddings of all K levels of
its codes, then the target as the sum of the embeddings of its levels below the one
being predicted. Attention is full (bidirectional); which level is predicted enters
through adaptive layer norm. As in the paper, predicting level l reuses the
embedding matrix of level l as the output projection.

Training picks a level uniformly per utterance (among those above the AR stage's
`ar_levels`: levels 2..K in the paper) and a random slice of up to 3 s of the same
utterance as the prompt; the rest of the utterance is the target.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from valle.errors import ConfigError
from valle.model.config import ModelConfig
from valle.model.layers import TransformerLayer, lengths_to_mask
from valle.model.stage import IGNORE, Stage, StageOutput


@dataclass
class NARBatch:
    """One training batch split into prompt and target (all padded, with lengths)."""

    phonemes: Tensor  # [B, P]
    phoneme_lens: Tensor  # [B]
    prompt: Tensor  # [B, K, T_p]
    prompt_lens: Tensor  # [B]
    target: Tensor  # [B, K, T]
    target_lens: Tensor  # [B]
    level: Tensor  # [B], in ar_levels..K-1 (0-based index of the level to predict)
    languages: Tensor | None = None  # [B, P]: each phoneme's language id, for a stage that takes them


def split_prompt(codes: Tensor, code_lens: Tensor, max_prompt: int, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cut a random slice of at most `max_prompt` frames (and at most half) out of each utterance.

    Returns (prompt, prompt_lens, target, target_lens): the prompt is the slice, the
    target is the utterance with the slice removed.
    """
    batch, levels, _ = codes.shape
    prompts, targets = [], []
    for b, length in enumerate(code_lens.tolist()):
        size = int(torch.randint(1, max(2, min(max_prompt, length // 2) + 1), (), generator=generator))
        start = int(torch.randint(0, length - size + 1, (), generator=generator))
        utterance = codes[b, :, :length]
        prompts.append(utterance[:, start:start + size])
        targets.append(torch.cat([utterance[:, :start], utterance[:, start + size:]], dim=1))
    return (*_pad(prompts, codes.device), *_pad(targets, codes.device))


def _pad(pieces: list[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([p.shape[1] for p in pieces], device=device)
    out = torch.zeros(len(pieces), pieces[0].shape[0], int(lengths.max()), dtype=torch.long, device=device)
    for b, piece in enumerate(pieces):
        out[b, :, :piece.shape[1]] = piece
    return out, lengths


class NARModel(Stage):
    kind = "nar"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        for option in ("phoneme_pointer", "self_feed"):
            if getattr(config, option):
                raise ConfigError(f"{option} is an option of the AR stage; leave it out of the NAR stage's config")
        d, k, v = config.d_model, config.n_codebooks, config.codebook_size
        self.level_embeddings = nn.ModuleList(nn.Embedding(v, d) for _ in range(k))
        self.first_level = config.ar_levels  # 0-based: the lowest level this stage predicts
        self.layers = nn.ModuleList(TransformerLayer(d, config.n_heads, config.d_ff, config.dropout, n_stages=k - config.ar_levels)
                                    for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d, elementwise_affine=False)
        self.init_weights()

    def _embed_codes(self, codes: Tensor, below: Tensor) -> Tensor:
        """Sum over levels < `below[b]` of the level embeddings of `codes` `[B, K, T]` -> `[B, T, d]`."""
        out = codes.new_zeros(*codes.shape[::2], self.config.d_model, dtype=self.text_embedding.weight.dtype)
        for level, embedding in enumerate(self.level_embeddings):
            used = (below > level).to(out.dtype)[:, None, None]
            out = out + used * embedding(codes[:, level])
        return out

    def logits(self, phonemes: Tensor, phoneme_lens: Tensor, prompt: Tensor, prompt_lens: Tensor,
               target: Tensor, target_lens: Tensor, level: Tensor, offset: int = 0,
               languages: Tensor | None = None) -> Tensor:
        """Logits `[B, T, V]` of codebook `level[b]` (0-based, >= ar_levels) at the target's frames.

        `offset`: the target is a window that starts this many frames into the utterance.
        """
        k = self.config.n_codebooks
        p, t_p, t = phonemes.shape[1], prompt.shape[2], target.shape[2]
        text = self._embed_text(phonemes, languages)
        prompt_x = self._embed_codes(prompt, torch.full_like(level, k)) * self.embedding_scale
        target_x = self._embed_codes(target, level) * self.embedding_scale
        # The prompt and the target are one audio stream: the target's positions go on
        # from the end of each utterance's own prompt, wherever padding puts it.
        frames = torch.arange(max(t_p, t), device=target.device)[None]
        positions = torch.cat([frames[:, :t_p].expand(len(level), -1), prompt_lens[:, None] + offset + frames[:, :t]], dim=1)
        audio = self.audio_positions.at(torch.cat([prompt_x, target_x], dim=1), positions)
        x = self.dropout(torch.cat([text, audio], dim=1))
        valid = torch.cat([lengths_to_mask(phoneme_lens, p), lengths_to_mask(prompt_lens, t_p), lengths_to_mask(target_lens, t)], 1)
        mask = (valid[:, None, :] | torch.eye(p + t_p + t, dtype=torch.bool, device=valid.device)[None])[:, None]
        stage = level - self.first_level
        for layer in self.layers:
            x = layer(x, mask, stage=stage)
        hidden = self.norm(x[:, p + t_p:])
        weights = torch.stack([e.weight for e in self.level_embeddings])[level]  # [B, V, d]: tied to level l
        return torch.einsum("btd,bvd->btv", hidden, weights)

    def forward(self, batch: NARBatch) -> StageOutput:
        logits = self.logits(batch.phonemes, batch.phoneme_lens, batch.prompt, batch.prompt_lens,
                             batch.target, batch.target_lens, batch.level, languages=batch.languages)
        targets = batch.target[torch.arange(len(batch.level)), batch.level]  # [B, T]
        targets = targets.masked_fill(~lengths_to_mask(batch.target_lens, targets.shape[1]), IGNORE)
        return StageOutput.scored(logits, targets, batch.level[:, None].expand_as(targets))

    @torch.no_grad()
    def generate(self, phonemes: Tensor, prompt: Tensor, lower: Tensor, offset: int = 0,
                 settled: Tensor | None = None, choose: Callable[[Tensor, int], Tensor] | None = None,
                 languages: Tensor | None = None) -> Tensor:
        """The levels above the AR's for the target's lower levels `[ar_levels, T]`, given the full `prompt` `[K, T_p]`.

        Returns all K levels of the target, `[K, T]`, each level chosen from its logits by
        `choose(logits [T, V], level)` (default: the likeliest code). A streaming caller passes
        a window of the target: `offset` frames into it, with the first frames' levels already
        decided (`settled`, `[K, n]`), which are kept and seen as they are. `languages` `[P]`: each
        phoneme's language id, for a stage that takes them.
        """
        k = self.config.n_codebooks
        target = torch.zeros(k, lower.shape[1], dtype=torch.long, device=lower.device)
        target[:self.first_level] = lower
        n_settled = 0 if settled is None else settled.shape[1]
        one = torch.ones(1, dtype=torch.long, device=phonemes.device)
        for level in range(self.first_level, k):
            logits = self.logits(phonemes[None], one * phonemes.shape[0], prompt[None], one * prompt.shape[1],
                                 target[None], one * target.shape[1], one * level, offset,
                                 None if languages is None else languages[None])
            target[level] = logits[0].argmax(-1) if choose is None else choose(logits[0], level)
            if n_settled:
                target[level, :n_settled] = settled[level]
        return target
