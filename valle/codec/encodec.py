"""EnCodec 24 kHz at 6 kbps (8 codebooks x 1024 entries, 75 frames/s): the VALL-E paper's codec.

Loaded through `transformers`' EncodecModel, which reads a local folder and needs no
torchaudio (the `encodec` package imports torchaudio, whose wheels do not import
beside every torch build). Nothing is ever downloaded. Weights come from a folder with
`config.json` + `model.safetensors` (a Hugging Face snapshot of facebook/encodec_24khz),
a single file (Meta's `encodec_24khz-d7cc33bc.th` or a transformers `.safetensors`,
see `encodec_convert`), or, given no path, the Hugging Face cache and then the torch
hub cache of Meta's `encodec` package; otherwise the call fails naming where it looked.
"""

import os
from pathlib import Path

import torch
from torch import Tensor

from valle.codec.encodec_convert import WEIGHT_FILE_SUFFIXES, load_encodec_file, torch_hub_checkpoint
from valle.errors import ConfigError, DependencyError

BANDWIDTH_KBPS = 6.0
HUB_REPO = "facebook/encodec_24khz"


def _hub_cache_snapshots() -> Path:
    """Where the local Hugging Face cache keeps snapshots of facebook/encodec_24khz."""
    root = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    return root / ("models--" + HUB_REPO.replace("/", "--")) / "snapshots"


def _missing_weights_error(searched: list[Path]) -> ConfigError:
    places = "\n  ".join(map(str, searched))
    return ConfigError(
        f"EnCodec weights not found; looked in:\n  {places}\n"
        f"valle never downloads weights. On a machine with internet, fetch the snapshot with "
        f"`huggingface-cli download {HUB_REPO} --local-dir encodec_24khz` (config.json + model.safetensors), "
        "copy the folder here and pass it as the codec (e.g. `--codec ./encodec_24khz`); "
        f"or copy Meta's encodec checkpoint to {torch_hub_checkpoint()} (or pass the .th file as the codec)."
    )


class EncodecCodec:
    """A `Codec` over transformers' EncodecModel at the paper's bandwidth."""

    def __init__(self, model: "torch.nn.Module", bandwidth: float = BANDWIDTH_KBPS) -> None:
        config = model.config
        if bandwidth not in config.target_bandwidths:
            raise ConfigError(f"EnCodec bandwidth {bandwidth} kbps is not one of {config.target_bandwidths}")
        self.model = model.eval()
        self.bandwidth = bandwidth
        self.sample_rate = config.sampling_rate
        self.frame_rate = float(config.frame_rate)
        self.codebook_size = config.codebook_size
        bits_per_level = self.frame_rate * torch.log2(torch.tensor(float(config.codebook_size))).item()
        self.n_codebooks = int(round(bandwidth * 1000 / bits_per_level))

    @torch.no_grad()
    def encode(self, wav: Tensor) -> Tensor:
        """`[B, S]` at 24 kHz -> `[B, 8, ceil(S / 320)]`."""
        encoded = self.model.encode(wav[:, None, :].float(), bandwidth=self.bandwidth)
        return encoded.audio_codes[0]  # one chunk: [B, K, T]

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.model.decode(codes[None], [None]).audio_values[:, 0]

    def codebooks(self) -> Tensor:
        return torch.stack([layer.codebook.embed for layer in self.model.quantizer.layers[:self.n_codebooks]])

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "cpu") -> "EncodecCodec":
        """From a snapshot folder or a weights file; given no path, the local caches.

        A file is Meta's `encodec` 24 kHz checkpoint (`.th`) or a transformers-format
        `.safetensors` of the default 24 kHz config. With no path: the newest snapshot of
        facebook/encodec_24khz in the Hugging Face cache, then Meta's checkpoint in the
        torch hub cache (`$TORCH_HOME/hub/checkpoints/encodec_24khz-d7cc33bc.th`).
        """
        try:
            from transformers import EncodecModel
        except ImportError:
            raise DependencyError("the EnCodec codec needs transformers: `pip install 'valle[encodec]'`") from None
        if path is not None:
            candidates = [Path(path)]
        else:  # newest snapshot first, then the file Meta's package caches
            cache = _hub_cache_snapshots()
            snapshots = sorted(cache.glob("*"), key=lambda p: p.stat().st_mtime, reverse=True) or [cache]
            candidates = [*snapshots, torch_hub_checkpoint()]
        for candidate in candidates:
            if candidate.is_file() and candidate.suffix in WEIGHT_FILE_SUFFIXES:
                return cls(load_encodec_file(candidate).to(device))
            if (candidate / "config.json").is_file() and any(candidate.glob("*.safetensors")):
                return cls(EncodecModel.from_pretrained(candidate, local_files_only=True).to(device))
        raise _missing_weights_error(candidates)
