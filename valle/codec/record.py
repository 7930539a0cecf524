"""What a tokenised corpus and a trained model record of the codec whose codes they hold.

The layout (levels, codebook size, rates) says whether a model can speak through a codec
at all; the hash of the weights says whether the codes mean the same. A registered name
and the folder it stands for are the same codec; a retrained codec in the same folder is not.
"""

import hashlib
from dataclasses import dataclass, fields
from typing import Any

import torch

from valle.codec.base import Codec
from valle.config import DictConfig


def weights_sha256(codec: Codec) -> str:
    """A hash of the codec's tensors (names, dtypes, shapes, values); of its class where it has none."""
    module = codec if isinstance(codec, torch.nn.Module) else getattr(codec, "model", None)
    digest = hashlib.sha256()
    if isinstance(module, torch.nn.Module):
        for name, tensor in sorted(module.state_dict().items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)};".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        digest.update(type(codec).__qualname__.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class CodecRecord(DictConfig):
    """The codec by the name it was given, its code layout and (where known) the hash of its weights."""

    kind = "codec record"

    name: str
    sample_rate: int
    frame_rate: float
    n_codebooks: int
    codebook_size: int
    weights_sha256: str | None = None  # None in a folder written without it

    @classmethod
    def of(cls, codec: Codec, name: str) -> "CodecRecord":
        return cls(str(name), int(codec.sample_rate), float(codec.frame_rate), int(codec.n_codebooks),
                   int(codec.codebook_size), weights_sha256(codec))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def identity(self) -> dict[str, Any]:
        """The record without its name: equal for two codecs that give the same codes."""
        return {k: v for k, v in self.to_dict().items() if k != "name"}
