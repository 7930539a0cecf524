"""Residual vector quantisation with EMA codebooks, as in SoundStream and EnCodec.

Level 1 quantises the encoder's output, level 2 what level 1 left over, and so on;
with quantiser dropout (training on a random number of levels) the first level
learns to carry the coarse content, which is what VALL-E's AR stage models.
Codebooks start from k-means on the first batch, follow their assigned vectors by
exponential moving averages (no gradient), and entries that fall out of use are
restarted on vectors from the current batch so that every level keeps its whole
vocabulary alive.
"""

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def kmeans(x: Tensor, k: int, iterations: int = 10, generator: torch.Generator | None = None) -> Tensor:
    """k centroids of the rows of `x` (Lloyd's algorithm, seeded with random rows)."""
    index = torch.randint(len(x), (k,), generator=generator, device="cpu").to(x.device)
    centroids = x[index].clone()
    for _ in range(iterations):
        assignment = torch.cdist(x, centroids).argmin(1)
        counts = torch.bincount(assignment, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, x)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None]
    return centroids


def squared_distances(x: Tensor, codebook: Tensor) -> Tensor:
    """`[M, V]`: the squared distance from each row of `x` `[M, dim]` to each row of `codebook` `[V, dim]`."""
    return x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(1)[None]


def nearest(x: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest row of `codebook` `[V, dim]` for each row of `x` `[M, dim]`."""
    return squared_distances(x, codebook).argmin(1)


def residual_codes(x: Tensor, codebooks: Iterable[Tensor]) -> Tensor:
    """`[K, M]` codes of the rows of `x` `[M, dim]`: each level's nearest vector to what the levels before left."""
    residual, codes = x, []
    for codebook in codebooks:
        code = nearest(residual, codebook)
        residual = residual - codebook[code]
        codes.append(code)
    return torch.stack(codes)


class VectorQuantizer(nn.Module):
    """One codebook of `size` vectors of `dim`; trained by EMA, not by the optimiser."""

    def __init__(self, dim: int, size: int, decay: float = 0.99, dead_threshold: float = 1.0) -> None:
        super().__init__()
        self.size, self.decay, self.dead_threshold = size, decay, dead_threshold
        self.register_buffer("codebook", torch.randn(size, dim))
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))

    def assign(self, x: Tensor) -> Tensor:
        """Nearest codebook entry for each row of `x` `[M, dim]`."""
        return nearest(x, self.codebook)

    def lookup(self, codes: Tensor) -> Tensor:
        return F.embedding(codes, self.codebook)

    @torch.no_grad()
    def _update(self, x: Tensor, codes: Tensor) -> None:
        if not self.initialized:
            self.codebook.copy_(kmeans(x, self.size))
            self.embed_sum.copy_(self.codebook)
            self.cluster_size.fill_(1.0)
            self.initialized.fill_(True)
            return
        counts = torch.bincount(codes, minlength=self.size).to(x.dtype)
        sums = torch.zeros_like(self.codebook).index_add_(0, codes, x)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (total + self.size * 1e-5) * total  # Laplace smoothing
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        dead = self.cluster_size < self.dead_threshold
        if dead.any():
            replacement = x[torch.randint(len(x), (int(dead.sum()),), device=x.device)]
            self.codebook[dead] = replacement
            self.embed_sum[dead] = replacement
            self.cluster_size[dead] = 1.0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantise `[M, dim]`: (straight-through output, codes, commitment loss)."""
        x = x.float()
        if self.training and not self.initialized:
            self._update(x.detach(), torch.zeros(0, dtype=torch.long, device=x.device))
        codes = self.assign(x.detach())
        quantized = self.lookup(codes)
        if self.training:
            self._update(x.detach(), codes)
        commitment = F.mse_loss(x, quantized.detach())
        return x + (quantized - x).detach(), codes, commitment


class ResidualVectorQuantizer(nn.Module):
    """`n_levels` codebooks applied to successive residuals; codes are `[B, K, T]`."""

    def __init__(self, dim: int, n_levels: int, size: int, decay: float = 0.99, dropout: float = 0.5) -> None:
        super().__init__()
        self.levels = nn.ModuleList(VectorQuantizer(dim, size, decay) for _ in range(n_levels))
        self.dropout = dropout

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`z` `[B, T, dim]` -> (quantised `[B, T, dim]`, codes `[B, K', T]`, commitment loss).

        In training, with probability `dropout`, only a random number K' of the first
        levels is used for the whole batch (EnCodec's variable bandwidth).
        """
        n_levels = len(self.levels)
        if self.training and torch.rand(()) < self.dropout:
            n_levels = int(torch.randint(1, n_levels + 1, ()))
        batch, frames, dim = z.shape
        residual = z.reshape(-1, dim).float()
        quantized = torch.zeros_like(residual)
        codes, losses = [], []
        for level in self.levels[:n_levels]:
            q, c, loss = level(residual)
            residual = residual - q.detach()
            quantized = quantized + q
            codes.append(c.view(batch, frames))
            losses.append(loss)
        # Straight-through over the sum: gradients reach the encoder as if unquantised.
        z_flat = z.reshape(-1, dim).float()
        quantized = z_flat + (quantized - z_flat).detach()
        return quantized.view(batch, frames, dim), torch.stack(codes, 1), torch.stack(losses).sum()

    @torch.no_grad()
    def encode(self, z: Tensor) -> Tensor:
        batch, frames, dim = z.shape
        codes = residual_codes(z.reshape(-1, dim).float(), [level.codebook for level in self.levels])
        return codes.view(len(self.levels), batch, frames).transpose(0, 1).contiguous()

    def decode(self, codes: Tensor) -> Tensor:
        """Codes `[B, K', T]` (K' <= K levels) -> `[B, T, dim]`."""
        return sum(level.lookup(codes[:, i]) for i, level in enumerate(self.levels[: codes.shape[1]]))
