"""The `Codec` protocol and the registry that finds a codec by name or folder.

Every other part of valle sees a codec only through this protocol: audio `[B, S]` at
`sample_rate` becomes codes `[B, K, T]` with K = `n_codebooks` levels of values in
`[0, codebook_size)` at `frame_rate` frames per second, and back.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from valle.codec.encodec_convert import WEIGHT_FILE_SUFFIXES
from valle.errors import ConfigError
from valle.pretrained import CONFIG_FILE

PRETRAINED = Path(__file__).parent / "pretrained"


@runtime_checkable
class Codec(Protocol):
    sample_rate: int
    frame_rate: float
    n_codebooks: int
    codebook_size: int

    def encode(self, wav: Tensor) -> Tensor:
        """`[B, S]` float samples -> `[B, K, T]` int64 codes."""
        ...

    def decode(self, codes: Tensor) -> Tensor:
        """`[B, K, T]` codes -> `[B, S']` float samples."""
        ...

    def codebooks(self) -> Tensor:
        """`[K, codebook_size, D]`: the vector each code stands for; the decoder hears the sum over levels."""
        ...


def _compact(path: Path, device: str) -> Codec:
    from valle.codec.compact import CompactCodec

    return CompactCodec.from_pretrained(path, device)


def _encodec(path: Path | None, device: str) -> Codec:
    from valle.codec.encodec import EncodecCodec

    return EncodecCodec.from_pretrained(path, device)


_LOADERS: dict[str, Callable[[Path | None, str], Codec]] = {"compact": _compact, "encodec": _encodec}
# What a bare name loads: the bundled compact codec; EnCodec from the local caches.
_DEFAULT_PATHS: dict[str, Path | None] = {"compact": PRETRAINED / "compact-16k", "encodec": None}


def load_codec(name_or_path: str | Path, device: str | torch.device = "cpu") -> Codec:
    """A codec by registered name ("compact", "encodec"), from a folder with a config.json,
    or from an EnCodec 24 kHz weights file (`.th` of Meta's encodec, `.safetensors`).

    A folder's config.json says which kind of codec it holds (its "codec" field for
    ours, EnCodec's `model_type` for a Hugging Face snapshot).
    """
    device, name = str(device), str(name_or_path)
    if name in _LOADERS:
        return _LOADERS[name](_DEFAULT_PATHS[name], device)
    path = Path(name_or_path)
    if path.suffix in WEIGHT_FILE_SUFFIXES and not path.is_dir():  # a lone EnCodec weights file
        return _encodec(path, device)
    config = path / CONFIG_FILE
    if not config.is_file():
        raise ConfigError(f"unknown codec {name!r}: give one of {', '.join(_LOADERS)}, "
                          "a folder with a config.json (a trained compact codec or an EnCodec snapshot) "
                          "or an EnCodec weights file (.th, .safetensors)")
    values = json.loads(config.read_text())
    kind = values.get("codec") or values.get("model_type")
    if kind not in _LOADERS:
        raise ConfigError(f"{config} describes a codec of kind {kind!r}; valle reads 'compact' and 'encodec'")
    return _LOADERS[kind](path, device)
