"""Transformer building blocks shared by the AR and NAR stages.

Pre-norm layers with PyTorch's fused `scaled_dot_product_attention` (flash or
memory-efficient kernels where the hardware has them), an optional key/value cache
for step-by-step decoding, and adaptive layer norm through which the NAR stage learns
which codebook level it is predicting.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle.model.linear import Linear


class LayerCache:
    """One layer's keys and values for step-by-step decoding, preallocated and written in place.

    Growing a cache by concatenation copies all of it at every step (and on CPU allocates
    fresh pages each time); a buffer sized once for the whole decode costs only the new
    entries, so a step reads each cached key and value once, as attention must.
    """

    def __init__(self, batch: int, n_heads: int, capacity: int, head_dim: int, like: Tensor) -> None:
        self.keys = like.new_empty(batch, n_heads, capacity, head_dim)
        self.values = like.new_empty(batch, n_heads, capacity, head_dim)
        self.length = 0

    def extend(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append `[B, H, T, d]` keys and values; returns all of them so far (views)."""
        end = self.length + keys.shape[2]
        if end > self.keys.shape[2]:
            raise ValueError(f"the KV cache holds {self.keys.shape[2]} positions; decoding needs {end}")
        self.keys[:, :, self.length:end] = keys
        self.values[:, :, self.length:end] = values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


KVCache = list[LayerCache]


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal positions times a learned scale, added to the embeddings."""

    def __init__(self, d_model: int, max_len: int = 8192) -> None:
        super().__init__()
        self.d_model = d_model
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("table", self._table(max_len), persistent=False)

    def _table(self, length: int) -> Tensor:
        position = torch.arange(length, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, self.d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / self.d_model))
        table = torch.zeros(length, self.d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)
        return table

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """`x` `[B, T, d]` + positions `offset .. offset + T - 1`."""
        return self.at(x, torch.arange(offset, offset + x.shape[1], device=x.device)[None])

    def at(self, x: Tensor, positions: Tensor) -> Tensor:
        """`x` `[B, T, d]` + the positions given for each element, `[B, T]` (or `[1, T]`)."""
        end = int(positions.max()) + 1 if positions.numel() else 0
        if end > len(self.table):
            self.table = self._table(2 * end).to(self.table.device)
        return x + self.scale * self.table[positions].to(x.dtype)


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm whose gain and bias depend on the stage: a_s * LN(h) + b_s."""

    def __init__(self, d_model: int, n_stages: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.gain_bias = nn.Embedding(n_stages, 2 * d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start as a plain LayerNorm for every stage: gain 1, bias 0."""
        d_model = self.gain_bias.weight.shape[1] // 2
        with torch.no_grad():
            self.gain_bias.weight[:, :d_model] = 1.0
            self.gain_bias.weight[:, d_model:] = 0.0

    def forward(self, x: Tensor, stage: Tensor) -> Tensor:
        gain, bias = self.gain_bias(stage)[:, None, :].chunk(2, dim=-1)  # per sample: [B, 1, d]
        return gain * self.norm(x) + bias


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = Linear(d_model, 3 * d_model)
        self.out = Linear(d_model, d_model)

    def forward(self, x: Tensor, mask: Tensor | None, cache: LayerCache | None = None) -> Tensor:
        """`x` `[B, T, d]`; `mask` `[B, 1, T, T_cache + T]` True where attention is allowed.

        With a `cache`, this input's keys and values are appended to it and attention sees all.
        """
        batch, length, d_model = x.shape
        q, k, v = (t.view(batch, length, self.n_heads, -1).transpose(1, 2) for t in self.qkv(x).split(d_model, dim=-1))
        if cache is not None:
            k, v = cache.extend(k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(batch, length, d_model))

    def weights(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """The attention probabilities `[B, H, T, T]` that `forward` applies (the fused kernel never shows them)."""
        batch, length, d_model = x.shape
        q, k, _ = (t.view(batch, length, self.n_heads, -1).transpose(1, 2) for t in self.qkv(x).split(d_model, dim=-1))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        return (scores if mask is None else scores.masked_fill(~mask, float("-inf"))).softmax(-1)


class TransformerLayer(nn.Module):
    """Pre-norm self-attention + feed-forward; with `n_stages`, both norms are adaptive."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, n_stages: int = 0) -> None:
        super().__init__()
        self.attention = Attention(d_model, n_heads, dropout)
        self.feed_forward = nn.Sequential(Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), Linear(d_ff, d_model))
        self.norm1, self.norm2 = ((AdaptiveLayerNorm(d_model, n_stages), AdaptiveLayerNorm(d_model, n_stages)) if n_stages
                                  else (nn.LayerNorm(d_model), nn.LayerNorm(d_model)))
        self.dropout = nn.Dropout(dropout)

    def _norm(self, norm: nn.Module, x: Tensor, stage: Tensor | None) -> Tensor:
        return norm(x, stage) if isinstance(norm, AdaptiveLayerNorm) else norm(x)

    def forward(self, x: Tensor, mask: Tensor | None, stage: Tensor | None = None,
                cache: LayerCache | None = None) -> Tensor:
        x = x + self.dropout(self.attention(self._norm(self.norm1, x, stage), mask, cache))
        return x + self.dropout(self.feed_forward(self._norm(self.norm2, x, stage)))


def lengths_to_mask(lengths: Tensor, max_length: int) -> Tensor:
    """`[B]` lengths -> `[B, max_length]` True at real (non-padding) positions."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


def top_k_accuracy(logits: Tensor, targets: Tensor, k: int, ignore_index: int) -> Tensor:
    """Share of non-ignored targets among the `k` highest logits (the paper reports top-10)."""
    valid = targets != ignore_index
    top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices
    hit = (top == targets.unsqueeze(-1)).any(-1) & valid
    return hit.sum() / valid.sum().clamp(min=1)


def init_weights(module: nn.Module) -> None:
    """GPT-style initialisation: N(0, 0.02) weights, zero biases (keeps tied logits small).

    `Module.apply` visits children first, so adaptive norms reset their own embedding after.
    """
    if isinstance(module, AdaptiveLayerNorm):
        module.reset_parameters()
    elif isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
