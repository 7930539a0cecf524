"""Saving and loading one trained stage: weights in safetensors, everything else in config.json.

A stage folder is self-describing: `config.json` names the stage, its model config, the
phoneme vocabulary it was trained with, the codec whose codes it models and the valle
version, so that it can never be paired with the wrong vocabulary or codec.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from valle import __version__
from valle.errors import ConfigError
from valle.files import atomic_write
from valle.model.ar import ARModel
from valle.model.config import ModelConfig
from valle.model.nar import NARModel
from valle.text.vocab import PhonemeVocab

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
STAGES = {"ar": ARModel, "nar": NARModel}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weights_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """A dtype for inference weights, given as itself or by name ("float32", "bfloat16", "float16")."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"weights can be loaded as {', '.join(DTYPES)}; not {dtype}")
    return DTYPES[dtype]


def save_stage(model: ARModel | NARModel, directory: str | Path, vocab: PhonemeVocab, codec: dict[str, Any],
               dtype: torch.dtype = torch.float32) -> Path:
    """Write one stage; `dtype=torch.float16` halves the file (loading casts back to float32)."""
    directory = Path(directory)
    stage = "ar" if isinstance(model, ARModel) else "nar"
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    with atomic_write(directory / WEIGHTS_FILE, "wb") as f:
        f.write(save_safetensors(tensors, metadata={"format": "pt", "stage": stage}))
    with atomic_write(directory / CONFIG_FILE) as f:
        json.dump({"stage": stage, "model": model.config.to_dict(), "vocab": vocab.to_dict(), "codec": codec,
                   "valle_version": __version__}, f, indent=1, ensure_ascii=False)
    return directory


def load_stage(directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | str = torch.float32
               ) -> tuple[ARModel | NARModel, dict[str, Any]]:
    """The model (in eval mode, weights in `dtype`) and the rest of its config.json (stage, vocab, codec, version)."""
    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise ConfigError(f"{directory} holds no trained stage: {name} is missing (train one with `valle train`)")
    dtype = weights_dtype(dtype)
    info = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    if info.get("stage") not in STAGES:
        raise ConfigError(f"{directory / CONFIG_FILE} names stage {info.get('stage')!r}; expected 'ar' or 'nar'")
    model = STAGES[info["stage"]](ModelConfig.from_dict(info["model"]))
    try:
        model.load_state_dict(load_file(directory / WEIGHTS_FILE))
    except (RuntimeError, SafetensorError) as e:
        raise ConfigError(f"{directory / WEIGHTS_FILE} does not match {CONFIG_FILE} ({str(e).splitlines()[0]}); "
                          "the folder mixes two runs") from None
    return model.to(device, dtype).eval(), info
