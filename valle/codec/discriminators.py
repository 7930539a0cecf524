"""Waveform discriminators for the codec's adversarial training.

A decoder trained by spectral distances alone renders the mean of what its codes leave
open: blurred harmonics, and a phase that does not follow from frame to frame. A
discriminator tells real audio from decoded audio by that detail, and the decoder learns
against it (least squares, as HiFi-GAN) and to match its features of the real audio.
Two kinds look at different things: period discriminators see the samples folded by a
prime period, the waveform's periodic structure (HiFi-GAN); spectrogram discriminators
see log-magnitude STFTs at several resolutions, the harmonics and formants (UnivNet and
Vocos). They are used in training only; a trained codec keeps none of them.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from valle.codec.spectral import STFT

PERIODS = (2, 3, 5, 7, 11)
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))
SLOPE = 0.1  # of the leaky ReLUs


class Judge(nn.Module):
    """2-D convolutions with leaky ReLUs, each output a feature to match, then a score per position."""

    convs: nn.ModuleList
    out: nn.Module

    def judge(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), SLOPE)
            features.append(x)
        return self.out(x).flatten(1), features


class PeriodDiscriminator(Judge):
    """Samples `[B, S]` folded into `[B, 1, S / p, p]`: 2-D convolutions along time, one column per phase."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.period = period
        widths = (1, *channels)
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
                                   for a, b in zip(widths, widths[1:]))
        self.out = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        pad = -wav.shape[-1] % self.period
        return self.judge(F.pad(wav, (0, pad), mode="reflect").view(wav.shape[0], 1, -1, self.period))


class SpectrogramDiscriminator(Judge):
    """The log-magnitude STFT at one resolution, `[B, 1, F, T]`, read by 2-D convolutions over frequency and time."""

    def __init__(self, n_fft: int, hop: int, channels: int = 16, layers: int = 4) -> None:
        super().__init__()
        self.stft = STFT(n_fft, hop)
        widths = [1] + [channels] * layers  # each layer halves the frequencies and keeps the frames
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (9, 3), (2, 1), padding=(4, 1)))
                                   for a, b in zip(widths, widths[1:]))
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        return self.judge(torch.log(self.stft(wav).abs().clamp(min=1e-5))[:, None])


class Discriminators(nn.Module):
    """Every period and spectrogram discriminator: `wav [B, S]` -> a (scores, features) pair from each."""

    def __init__(self, periods: tuple[int, ...] = PERIODS,
                 resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS) -> None:
        super().__init__()
        self.members = nn.ModuleList([*(PeriodDiscriminator(p) for p in periods),
                                      *(SpectrogramDiscriminator(n_fft, hop) for n_fft, hop in resolutions)])

    def forward(self, wav: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [member(wav) for member in self.members]


Judgements = list[tuple[Tensor, list[Tensor]]]


def discriminator_loss(real: Judgements, fake: Judgements) -> Tensor:
    """Least squares: real audio scored 1, decoded audio 0, averaged over the discriminators."""
    losses = [((1 - r) ** 2).mean() + (f ** 2).mean() for (r, _), (f, _) in zip(real, fake)]
    return sum(losses) / len(losses)


def adversarial_loss(fake: Judgements) -> Tensor:
    """The decoder's side: its audio scored as real, averaged over the discriminators."""
    return sum(((1 - f) ** 2).mean() for f, _ in fake) / len(fake)


def feature_loss(real: Judgements, fake: Judgements) -> Tensor:
    """L1 between the discriminators' features of real and decoded audio, averaged over every layer of each."""
    distances = [(r - f).abs().mean() for (_, rs), (_, fs) in zip(real, fake) for r, f in zip(rs, fs)]
    return sum(distances) / len(distances)
