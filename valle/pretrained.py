"""A trained model's folder: `config.json` beside `model.safetensors`, each written atomically.

The codec, the AR and NAR stages and the whole model are all saved this way, so that one
reader serves every folder and a half-written or mismatched one is always refused with
the same clear words.
"""

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor, nn

from valle.errors import ConfigError
from valle.files import atomic_write

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def computes_bfloat16(device: str | torch.device, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether `device` has bfloat16 arithmetic of its own (a GPU that supports it; a CPU with AVX512-BF16 or AMX).

    There bfloat16 weights halve what a decoding step reads without costing a conversion
    per operation; elsewhere they are emulated and slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no cheap way to ask, and float32 is never wrong
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def weights_dtype(dtype: torch.dtype | str, device: str | torch.device = "cpu") -> torch.dtype:
    """A dtype for inference weights, given as itself or by name ("float32", "bfloat16", "float16"), or "auto":
    bfloat16 where `device` computes it natively (`computes_bfloat16`), else float32."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if computes_bfloat16(device) else torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"weights can be loaded as {', '.join(DTYPES)} or auto; not {dtype}")
    return DTYPES[dtype]


def save_folder(directory: str | Path, config: dict[str, Any], tensors: dict[str, Tensor], metadata: dict[str, str],
                dtype: torch.dtype = torch.float32) -> Path:
    """Write the weights (floating ones in `dtype`: float16 halves the file), then `config.json`.

    The config goes last, so that a folder whose config is there was written whole.
    """
    directory = Path(directory)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous() for k, v in tensors.items()}
    with atomic_write(directory / WEIGHTS_FILE, "wb") as f:
        f.write(save(tensors, metadata={"format": "pt", **metadata}))
    with atomic_write(directory / CONFIG_FILE) as f:
        json.dump(config, f, indent=1, ensure_ascii=False)
    return directory


def read_config(directory: str | Path, holds: str, advice: str) -> dict[str, Any]:
    """The values of `config.json`, once both files are there; a missing one is named with `advice` on making it."""
    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise ConfigError(f"{directory} holds no {holds}: {name} is missing ({advice})")
    return json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))


def load_weights(module: nn.Module, directory: str | Path, derived: tuple[str, ...] = ()) -> None:
    """Copy `model.safetensors` into `module`, cast to its dtypes (a float16 file loads as float32).

    Tensors whose names end in `derived` may be absent: the saver left out what loading recomputes.
    """
    directory = Path(directory)
    try:
        missing, unexpected = module.load_state_dict(load_file(directory / WEIGHTS_FILE), strict=False)
    except (RuntimeError, SafetensorError) as e:  # tensors of the wrong shape, or not a safetensors file
        mismatch = str(e).splitlines()[0]
    else:
        missing = [k for k in missing if not k.endswith(derived)]
        if not missing and not unexpected:
            return
        mismatch = f"missing {_names(missing)}, unexpected {_names(unexpected)}"
    raise ConfigError(f"the weights in {directory} do not match its {CONFIG_FILE} ({mismatch}); "
                      "the folder mixes two models: train or copy it again")


def _names(names: list[str], shown: int = 3) -> str:
    if not names:
        return "none"
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
