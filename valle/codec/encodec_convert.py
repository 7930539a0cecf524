"""Read EnCodec 24 kHz weights stored as single files into transformers' EncodecModel.

Why this exists: many machines already hold EnCodec's weights, but not as a Hugging
Face snapshot folder. Meta's `encodec` package caches its 24 kHz model in the torch hub
cache (`<torch hub dir>/checkpoints/encodec_24khz-d7cc33bc.th`) as a plain state dict of
its own module tree. valle runs EnCodec through transformers (Meta's package imports
torchaudio), so this module renames that state dict to transformers' layout, and also
reads a lone transformers-format `.safetensors` file, both into the default 24 kHz
`EncodecConfig`. Nothing here downloads anything.

The two module trees differ only in names (the architecture and shapes are the same):

    Meta `encodec`                                  transformers
    {en,de}coder.model.N.*                          {en,de}coder.layers.N.*
    ...conv.conv.* / ...convtr.convtr.*             ...conv.*  (also in block.M, shortcut)
    ...weight_g / ...weight_v                       ...parametrizations.weight.original0 / 1
    ...lstm.*                                       ...lstm.*
    quantizer.vq.layers.N._codebook.*               quantizer.layers.N.codebook.*

Old-style weight norm keeps `weight_g` (the norm, "original0" of the parametrization)
and `weight_v` (the direction, "original1"); older transformers checkpoints use the
same two names, so they are renamed here too.
"""

import re
from pathlib import Path

import torch
from torch import Tensor

from valle.errors import ConfigError

TORCH_HUB_FILE = "encodec_24khz-d7cc33bc.th"
# Single files that hold EnCodec weights: Meta's checkpoint, a transformers safetensors file.
WEIGHT_FILE_SUFFIXES = (".th", ".safetensors")

# Codebook statistics used only when training the quantizer: a checkpoint may omit them.
_TRAINING_ONLY = ("codebook.inited", "codebook.cluster_size", "codebook.embed_avg")

_RENAMES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(encoder|decoder)\.model\."), r"\1.layers."),
    (re.compile(r"\.(conv|convtr)\.(conv|convtr)\."), ".conv."),
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\."), r"quantizer.layers.\1.codebook."),
    (re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
    (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"),
]


def torch_hub_checkpoint() -> Path:
    """Where Meta's `encodec` package caches the 24 kHz weights ($TORCH_HOME aware)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_HUB_FILE


def transformers_key(key: str) -> str:
    """The transformers EncodecModel name of a Meta `encodec` (or older transformers) state-dict key."""
    for pattern, replacement in _RENAMES:
        key = pattern.sub(replacement, key)
    return key


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename every key; names that are already in transformers' layout stay as they are."""
    converted: dict[str, Tensor] = {}
    for key, value in state.items():
        new = transformers_key(key)
        if new in converted:
            raise ValueError(f"two checkpoint entries map to {new!r}")
        converted[new] = value
    return converted


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The tensors of a `.th` state dict (tensors only: weights_only) or a `.safetensors` file."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load and safetensors raise many kinds on a bad file
        raise ConfigError(f"cannot read EnCodec weights from {path}: {type(error).__name__}: {error}") from None
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"{path} is not an EnCodec state dict (expected a mapping of names to tensors)")
    return state


def load_encodec_file(path: Path) -> "torch.nn.Module":
    """transformers' EncodecModel (default 24 kHz config) with the weights of one checkpoint file."""
    from transformers import EncodecConfig, EncodecModel

    try:
        state = convert_state_dict(read_checkpoint(path))
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None
    model = EncodecModel(EncodecConfig())
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(_TRAINING_ONLY)]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        problems = [f"{len(names)} {what} (e.g. {names[0]})" for what, names in
                    (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong_shape)) if names]
        raise ConfigError(f"{path} does not hold EnCodec 24 kHz weights: {', '.join(problems)}. "
                          "valle reads Meta's encodec_24khz checkpoint or a transformers model.safetensors of "
                          "facebook/encodec_24khz; for another EnCodec pass its snapshot folder with config.json")
    model.load_state_dict(state, strict=False)
    return model
