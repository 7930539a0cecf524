"""The depth decoder: the tokens of one AR step, one after another, from the step's hidden state.

With `ar_levels` k > 1 the AR stage predicts the first k codebook levels of every frame
itself (the levels that carry the words with a compact codec), not only level 1. One
step of the AR transformer covers `group_size` g frames; from its hidden state a small
causal transformer runs over the step's g x k tokens, frame by frame and level by level
within a frame, so that each token is predicted knowing the ones before it (the depth
transformer of RQ-Transformer and Moshi). The AR transformer, which aligns the audio
with the phonemes, thus decides every content level; the NAR stage adds the rest.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle.model.config import ModelConfig
from valle.model.layers import LayerCache, TransformerLayer
from valle.model.linear import Linear


class DepthDecoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, v = config.d_model, config.codebook_size
        self.levels, self.length = config.ar_levels, config.group_size * config.ar_levels
        self.n_heads, self.vocab = config.n_heads, v + 3  # codes, EOS, BOS, PAD (as the AR's tokens)
        self.context = Linear(d, d)
        self.positions = nn.Parameter(torch.zeros(self.length, d))
        # The token at depth position i - 1 enters position i; one table per depth position.
        self.token_embedding = nn.Embedding((self.length - 1) * self.vocab, d)
        self.layers = nn.ModuleList(TransformerLayer(d, config.n_heads, config.d_ff, config.dropout)
                                    for _ in range(config.depth_layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.Parameter(torch.randn(self.levels, v + 1, d) * 0.02)  # one output matrix per level

    def _embed_previous(self, tokens: Tensor) -> Tensor:
        """Tokens `[..., m]` at depth positions 0..m-1 -> embeddings `[..., m, d]` (as inputs to positions 1..m)."""
        offsets = torch.arange(tokens.shape[-1], device=tokens.device) * self.vocab
        return self.token_embedding(tokens + offsets)

    def _logits(self, hidden: Tensor) -> Tensor:
        """Depth states `[..., g * k, d]` -> logits `[..., g * k, V + 1]`, each position through its level's matrix."""
        levels = torch.arange(self.length, device=hidden.device) % self.levels
        return torch.einsum("...md,mvd->...mv", self.norm(hidden), self.heads[levels])

    def forward(self, context: Tensor, tokens: Tensor) -> Tensor:
        """Teacher-forced logits `[B, n, g * k, V + 1]` from AR states `[B, n, d]` and the step's tokens `[B, n, g * k]`.

        `tokens` hold codes, EOS or PAD (for targets that are ignored); token i only ever
        influences positions after i.
        """
        batch, n, _ = context.shape
        x = self.context(context)[:, :, None] + self.positions
        x = x + torch.cat([torch.zeros_like(x[:, :, :1]), self._embed_previous(tokens[..., :-1])], dim=2)
        x = x.view(batch * n, self.length, -1)
        causal = torch.ones(self.length, self.length, dtype=torch.bool, device=x.device).tril()
        for layer in self.layers:
            x = layer(x, causal)
        return self._logits(x).view(batch, n, self.length, -1)

    def decode(self, context: Tensor, choose: Callable[[int, Tensor], Tensor]) -> Tensor:
        """One step's tokens `[B, g * k]`, each chosen by `choose(position, logits [B, V + 1]) -> tokens [B]`."""
        batch = context.shape[0]
        start = self.context(context)
        head_dim = start.shape[-1] // self.n_heads
        cache = [LayerCache(batch, self.n_heads, self.length, head_dim, start) for _ in self.layers]
        tokens = torch.empty(batch, self.length, dtype=torch.long, device=context.device)
        x = start + self.positions[0]
        for i in range(self.length):
            h = x[:, None]
            for layer, layer_cache in zip(self.layers, cache):
                h = layer(h, None, cache=layer_cache)
            tokens[:, i] = choose(i, F.linear(self.norm(h[:, 0]), self.heads[i % self.levels]))
            if i + 1 < self.length:
                x = start + self.positions[i + 1] + self.token_embedding(tokens[:, i] + i * self.vocab)
        return tokens
