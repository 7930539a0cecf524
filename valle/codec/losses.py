"""Reconstruction losses that compare what the ear compares: spectra at several resolutions, and phases."""

import math

import torch
from torch import Tensor, nn

from valle.codec.spectral import STFT, LogMel

# (n_fft, hop) pairs: short windows judge timing, long ones judge pitch and formants.
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


class MultiResolutionLoss(nn.Module):
    """L1 between log-mel spectra plus spectral convergence and log-magnitude L1 of STFTs."""

    def __init__(self, sample_rate: int, resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS, n_mels: int = 80) -> None:
        super().__init__()
        self.mels = nn.ModuleList(LogMel(sample_rate, n_fft, hop, n_mels) for n_fft, hop in resolutions)
        self.stfts = nn.ModuleList(STFT(n_fft, hop) for n_fft, hop in resolutions)

    def forward(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
        mel = sum((m(prediction) - m(target)).abs().mean() for m in self.mels) / len(self.mels)
        convergence, log_magnitude = 0.0, 0.0
        for stft in self.stfts:
            p, t = stft(prediction).abs(), stft(target).abs()
            convergence = convergence + torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp(min=1e-7)
            log_magnitude = log_magnitude + (torch.log(p.clamp(min=1e-5)) - torch.log(t.clamp(min=1e-5))).abs().mean()
        n = len(self.stfts)
        return {"mel": mel, "convergence": convergence / n, "log_magnitude": log_magnitude / n}


def anti_wrapped(angle: Tensor) -> Tensor:
    """How far an angle difference is from a whole turn, in [0, pi]: phases 2 pi apart are the same phase."""
    return (angle - 2 * math.pi * torch.round(angle / (2 * math.pi))).abs()


class PhaseLoss(nn.Module):
    """APNet's anti-wrapping phase losses on one STFT grid: the instantaneous phase, its difference across
    frequency (group delay) and across time (instantaneous frequency), each weighted by the target's magnitude
    (a quiet bin's phase is noise). Spectral losses judge magnitudes only, and leave the phases a decoder
    predicts free to be inconsistent (recipes/compact_codec.md, the ceiling probe)."""

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.stft = STFT(n_fft, hop_length)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        p, t = self.stft(prediction), self.stft(target)
        weight = t.abs()
        weight = weight / weight.sum().clamp(min=1e-7)
        difference = p.angle() - t.angle()
        instantaneous = (anti_wrapped(difference) * weight).sum()
        group_delay = (anti_wrapped(difference.diff(dim=1)) * weight[:, 1:]).sum()
        frequency = (anti_wrapped(difference.diff(dim=2)) * weight[..., 1:]).sum()
        return (instantaneous + group_delay + frequency) / 3
