"""Our own compact neural codec: spectrogram encoder, residual VQ, Vocos-style decoder.

    wav [B, S] -> log-mel (one frame per hop) -> ConvNeXt encoder -> RVQ (K x N codes)
    codes [B, K, T] -> embeddings summed -> ConvNeXt decoder -> log-magnitude + phase
                    -> inverse STFT -> wav [B, T * hop]

Everything between the spectrogram and its inverse runs at the frame rate (50 Hz at
16 kHz with hop 320), which is what makes the codec train on a CPU and run many
times faster than real time.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from valle.codec.rvq import ResidualVectorQuantizer
from valle.codec.spectral import STFT, LogMel, pad_to_hop
from valle.config import DictConfig
from valle.errors import ConfigError
from valle.pretrained import load_weights, read_config, save_folder

EMA_SUMS = ("embed_sum",)  # not saved: each is its codebook times its cluster sizes


@dataclass(frozen=True)
class CompactCodecConfig(DictConfig):
    kind = "codec config"

    sample_rate: int = 16000
    hop_length: int = 320
    n_fft: int = 1280
    n_mels: int = 100
    encoder_dim: int = 256
    encoder_layers: int = 4
    latent_dim: int = 128
    decoder_dim: int = 384
    decoder_layers: int = 8
    mlp_ratio: int = 3
    n_codebooks: int = 8
    codebook_size: int = 1024
    ema_decay: float = 0.99
    quantizer_dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.n_fft < self.hop_length or (self.n_fft - self.hop_length) % 2:
            raise ConfigError(f"n_fft ({self.n_fft}) must be >= hop_length ({self.hop_length}) with an even difference")
        if self.n_codebooks < 1 or self.codebook_size < 2:
            raise ConfigError("a codec needs n_codebooks >= 1 and codebook_size >= 2")



class ConvNeXtBlock(nn.Module):
    """Depthwise conv (time mixing) + MLP (channel mixing), residual, as in ConvNeXt/Vocos."""

    def __init__(self, dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.mix = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.scale = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: Tensor) -> Tensor:  # [B, dim, T]
        h = self.norm(self.mix(x).transpose(1, 2))
        return x + (self.scale * self.mlp(h)).transpose(1, 2)


class ConvNeXtStack(nn.Module):
    """Input projection, `layers` ConvNeXt blocks, output projection; `[B, C_in, T] -> [B, T, C_out]`."""

    def __init__(self, in_dim: int, dim: int, out_dim: int, layers: int, mlp_ratio: int) -> None:
        super().__init__()
        self.embed = nn.Conv1d(in_dim, dim, kernel_size=7, padding=3)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(dim, mlp_ratio) for _ in range(layers)))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(self.blocks(self.embed(x)).transpose(1, 2)))


class CompactCodec(nn.Module):
    """A `Codec`: `encode(wav [B, S]) -> codes [B, K, T]`, `decode(codes) -> wav [B, T * hop]`."""

    def __init__(self, config: CompactCodecConfig = CompactCodecConfig()) -> None:
        super().__init__()
        c = self.config = config
        self.features = LogMel(c.sample_rate, c.n_fft, c.hop_length, c.n_mels)
        self.encoder = ConvNeXtStack(c.n_mels, c.encoder_dim, c.latent_dim, c.encoder_layers, c.mlp_ratio)
        self.quantizer = ResidualVectorQuantizer(c.latent_dim, c.n_codebooks, c.codebook_size, c.ema_decay, c.quantizer_dropout)
        self.decoder = ConvNeXtStack(c.latent_dim, c.decoder_dim, c.n_fft + 2, c.decoder_layers, c.mlp_ratio)
        self.istft = STFT(c.n_fft, c.hop_length)

    # -- the Codec protocol ------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.config.sample_rate / self.config.hop_length

    @property
    def n_codebooks(self) -> int:
        return self.config.n_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @torch.no_grad()
    def encode(self, wav: Tensor) -> Tensor:
        """`[B, S]` float at `sample_rate` -> `[B, K, ceil(S / hop)]` int64 codes."""
        return self.quantizer.encode(self._latents(wav))

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """`[B, K', T]` codes (the first K' <= K levels) -> `[B, T * hop]` samples."""
        return self._synthesise(self.quantizer.decode(codes))

    def codebooks(self) -> Tensor:
        return torch.stack([level.codebook for level in self.quantizer.levels])

    # -- training ----------------------------------------------------------------------
    def forward(self, wav: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruct `wav` through the quantiser: (reconstruction, codes, commitment loss)."""
        quantized, codes, commitment = self.quantizer(self._latents(wav))
        return self._synthesise(quantized), codes, commitment

    def first_level(self, wav: Tensor) -> Tensor:
        """`[B, T, dim]`: level 1's quantised latents of `wav`, gradients straight through to the encoder.

        What a content loss reads to make level 1 carry the words; the codebooks are left as they are.
        """
        latents = self._latents(wav).float()
        level = self.quantizer.levels[0]
        quantized = level.lookup(level.assign(latents.detach().reshape(-1, latents.shape[-1]))).view_as(latents)
        return latents + (quantized - latents).detach()

    def _latents(self, wav: Tensor) -> Tensor:
        return self.encoder(self.features(pad_to_hop(wav, self.config.hop_length)))

    def spectrum(self, latents: Tensor) -> tuple[Tensor, Tensor]:
        """The decoder's magnitudes and phases, each `[B, n_fft // 2 + 1, T]`, for latents `[B, T, dim]`."""
        out = self.decoder(latents.transpose(1, 2)).transpose(1, 2).float()  # [B, n_fft + 2, T]
        log_magnitude, phase = out.chunk(2, dim=1)
        return torch.exp(log_magnitude.clamp(max=10.0)), phase

    def _synthesise(self, latents: Tensor) -> Tensor:
        return self.istft.inverse(torch.polar(*self.spectrum(latents)))

    # -- persistence -------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write the folder `from_pretrained` reads; `dtype=torch.float16` halves it (it loads back as float32)."""
        tensors = {k: v for k, v in self.state_dict().items() if not k.endswith(EMA_SUMS)}
        return save_folder(directory, {"codec": "compact", **self.config.to_dict()}, tensors, {"codec": "compact"}, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "CompactCodec":
        values = read_config(directory, "compact codec",
                             "train one with `valle codec train` or use the bundled one by name")
        values.pop("codec", None)
        model = cls(CompactCodecConfig.from_dict(values))
        load_weights(model, directory, derived=EMA_SUMS)
        for level in model.quantizer.levels:
            level.embed_sum.copy_(level.codebook * level.cluster_size[:, None])
        return model.to(device).eval()
