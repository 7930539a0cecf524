"""STFT, its inverse and mel filters, in plain torch (no torchaudio).

The codec works at frame rate: the encoder reads a spectrogram with one frame per
code, and the decoder predicts a complex spectrogram that an inverse STFT turns into
samples (Vocos' idea), so no layer ever runs at the sample rate.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> Tensor:
    """Triangular filters on the HTK mel scale, `[n_mels, n_fft // 2 + 1]`, area-normalised (Slaney)."""
    f_max = f_max or sample_rate / 2

    def hz_to_mel(f: Tensor) -> Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: Tensor) -> Tensor:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(hz_to_mel(torch.tensor(f_min)), hz_to_mel(torch.tensor(f_max)), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return (filters * (2.0 / (upper - lower))).float()


class STFT(torch.nn.Module):
    """'Same'-padded STFT and inverse: `S` samples <-> `S // hop` frames, exactly invertible."""

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        if (n_fft - hop_length) % 2:
            raise ValueError("n_fft - hop_length must be even for symmetric padding")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.padding = (n_fft - hop_length) // 2
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        """`[B, S]` (S a multiple of hop) -> complex `[B, n_fft // 2 + 1, S // hop]`."""
        padded = F.pad(wav.unsqueeze(1), (self.padding, self.padding), mode="reflect").squeeze(1)
        return torch.stft(padded, self.n_fft, self.hop_length, window=self.window, center=False, return_complex=True)

    def inverse(self, spec: Tensor) -> Tensor:
        """Complex `[B, n_fft // 2 + 1, T]` -> `[B, T * hop]` by windowed overlap-add."""
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        n_frames = spec.shape[-1]
        length = (n_frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        wav = F.fold(frames, **fold)[:, 0, 0]
        envelope = F.fold(self.window.square().expand(1, n_frames, -1).transpose(1, 2), **fold)[0, 0, 0]
        wav = wav[:, self.padding:length - self.padding]
        return wav / envelope[self.padding:length - self.padding].clamp(min=1e-8)


class LogMel(torch.nn.Module):
    """Log-mel spectrogram `[B, n_mels, frames]`, for the encoder's input and the losses."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.stft = STFT(n_fft, hop_length)
        self.register_buffer("filters", mel_filters(sample_rate, n_fft, n_mels), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        power = self.stft(wav).abs()
        return torch.log(torch.clamp(self.filters @ power, min=1e-5))


def pad_to_hop(wav: Tensor, hop_length: int) -> Tensor:
    """Zero-pad the last axis up to a multiple of `hop_length` (at least one hop)."""
    length = max(hop_length, math.ceil(wav.shape[-1] / hop_length) * hop_length)
    return F.pad(wav, (0, length - wav.shape[-1]))
