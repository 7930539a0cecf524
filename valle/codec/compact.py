"""Our own compact neural codec: spectrogram encoder, residual VQ, Vocos-style decoder.

    wav [B, S] -> log-mel (one frame per hop) -> ConvNeXt encoder -> RVQ (K x N codes)
    codes [B, K, T] -> embeddings summed -> ConvNeXt decoder -> log-magnitude + phase
                    -> inverse STFT -> wav [B, T * hop]

Everything between the spectrogram and its inverse runs at the frame rate (50 Hz at
16 kHz with hop 320), which is what makes the codec train on a CPU and run many
times faster than real time.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import Tensor, nn

from valle.codec.rvq import ResidualVectorQuantizer
from valle.codec.spectral import STFT, LogMel, pad_to_hop
from valle.config import DictConfig
from valle.errors import ConfigError
from valle.files import atomic_write

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


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

    def _latents(self, wav: Tensor) -> Tensor:
        return self.encoder(self.features(pad_to_hop(wav, self.config.hop_length)))

    def _synthesise(self, latents: Tensor) -> Tensor:
        out = self.decoder(latents.transpose(1, 2)).transpose(1, 2).float()  # [B, n_fft + 2, T]
        log_magnitude, phase = out.chunk(2, dim=1)
        magnitude = torch.exp(log_magnitude.clamp(max=10.0))
        return self.istft.inverse(torch.polar(magnitude, phase))

    # -- persistence -------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write `config.json` and `model.safetensors` atomically.

        The EMA sums are left out: they are the codebook times the cluster sizes.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
                   for k, v in self.state_dict().items() if not k.endswith("embed_sum")}
        with atomic_write(directory / WEIGHTS_FILE, "wb") as f:
            f.write(save(tensors, metadata={"format": "pt", "codec": "compact"}))
        with atomic_write(directory / CONFIG_FILE) as f:
            json.dump({"codec": "compact", **self.config.to_dict()}, f, indent=1)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "CompactCodec":
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise ConfigError(f"{directory} holds no compact codec: {name} is missing "
                                  "(train one with `valle codec train` or use the bundled one by name)")
        values = json.loads((directory / CONFIG_FILE).read_text())
        values.pop("codec", None)
        model = cls(CompactCodecConfig.from_dict(values))
        weights = load_file(directory / WEIGHTS_FILE)
        mismatch = f"weights in {directory} do not match its config.json; the folder mixes two codecs, train or copy it again"
        try:
            missing, unexpected = model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()},
                                                        strict=False)
        except RuntimeError:  # tensors of the wrong shape
            raise ConfigError(mismatch) from None
        if unexpected or any(not k.endswith("embed_sum") for k in missing):
            raise ConfigError(f"{mismatch} (missing {missing}, unexpected {unexpected})")
        for level in model.quantizer.levels:
            level.embed_sum.copy_(level.codebook * level.cluster_size[:, None])
        return model.to(device).eval()

