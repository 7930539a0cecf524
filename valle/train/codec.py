"""Train the compact codec on the audio of one or more manifests.

Random fixed-length segments are cut from utterances held in memory (int16), the
codec reconstructs them through its quantiser, and multi-resolution spectral losses
plus the commitment loss drive the encoder and decoder; codebooks follow by EMA.
Checkpoints (model, optimiser, step, random states) are written atomically every
`checkpoint_every` steps, so `--resume` continues an interrupted run.
It sits with the other training, after `valle.data`, whose manifests it reads.
"""

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from valle.audio import load_audio
from valle.codec.compact import CompactCodec, CompactCodecConfig
from valle.codec.losses import MultiResolutionLoss
from valle.data.manifest import Utterance, read_manifest
from valle.errors import ConfigError
from valle.files import atomic_write

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class CodecTrainConfig:
    steps: int = 20000
    batch_size: int = 16
    segment_frames: int = 64  # 1.28 s at 50 Hz
    learning_rate: float = 5e-4
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    commitment_weight: float = 1.0
    log_every: int = 50
    checkpoint_every: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.segment_frames < 8:
            raise ConfigError("codec training needs steps >= 1, batch_size >= 1 and segment_frames >= 8")


class SegmentSampler:
    """Random segments of a fixed length from a list of utterances, proportional to their length."""

    def __init__(self, utterances: list[np.ndarray], length: int, seed: int) -> None:
        if not utterances:
            raise ConfigError("no audio to train on: the manifests are empty")
        self.utterances, self.length = utterances, length
        sizes = np.array([len(u) for u in utterances], dtype=np.float64)
        self.weights = sizes / sizes.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        out = np.zeros((size, self.length), dtype=np.float32)
        for row, index in enumerate(self.rng.choice(len(self.utterances), size=size, p=self.weights)):
            audio = self.utterances[index]
            start = int(self.rng.integers(0, max(1, len(audio) - self.length + 1)))
            piece = audio[start:start + self.length]
            out[row, :len(piece)] = piece / 32768.0
        return torch.from_numpy(out)


def load_corpus_audio(rows: list[Utterance], sample_rate: int) -> list[np.ndarray]:
    """Every utterance as int16 at `sample_rate` (half the memory of float32)."""
    return [np.round(load_audio(row.audio, sample_rate) * 32767).astype(np.int16)
            for row in tqdm(rows, desc="loading audio", unit="utt")]


def _learning_rate(step: int, config: CodecTrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_codec(manifests: list[Path], out: Path, model_config: CompactCodecConfig = CompactCodecConfig(),
                config: CodecTrainConfig = CodecTrainConfig(), resume: bool = False, init: Path | None = None,
                device: str | None = None, time_limit: float | None = None) -> Path:
    """Train and write `out/model` (see `CompactCodec.from_pretrained`); returns that folder.

    `init` starts from a pretrained codec's weights; `time_limit` (seconds) ends the
    run early, cleanly checkpointed, for jobs on a scheduler with a wall-clock limit.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = CompactCodec.from_pretrained(init, device) if init else CompactCodec(model_config).to(device)
    model_config = model.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.8, 0.99),
                                  weight_decay=config.weight_decay)
    loss_fn = MultiResolutionLoss(model_config.sample_rate).to(device)
    rows = [row for manifest in manifests for row in read_manifest(manifest)]
    sampler = SegmentSampler(load_corpus_audio(rows, model_config.sample_rate),
                             config.segment_frames * model_config.hop_length, config.seed)

    step = 0
    checkpoint_path = out / CHECKPOINT
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if state["model_config"] != model_config.to_dict():
            raise ConfigError(f"{checkpoint_path} was trained with another codec config; use a new --out folder")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        torch.set_rng_state(state["torch_rng"])
        sampler.rng.bit_generator.state = json.loads(state["sampler_rng"])
    elif resume:
        raise ConfigError(f"--resume given but {checkpoint_path} does not exist")

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast("cpu", enabled=False)
    model.train()
    progress = tqdm(total=config.steps, initial=step, desc="codec training", unit="step")
    started = time.time()
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        while step < config.steps and (time_limit is None or time.time() - started < time_limit):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, config)
            wav = sampler.batch(config.batch_size).to(device)
            with autocast:
                reconstruction, codes, commitment = model(wav)
            parts = loss_fn(reconstruction.float(), wav)
            loss = parts["mel"] + parts["convergence"] + parts["log_magnitude"] + config.commitment_weight * commitment
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            progress.update(1)
            if step % config.log_every == 0 or step == config.steps:
                record = {"step": step, "loss": loss.item(), "commitment": commitment.item(), "grad_norm": grad_norm.item(),
                          "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.time() - started, 1),
                          "levels_used": codes.shape[1], **{k: v.item() for k, v in parts.items()}}
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                progress.set_postfix(loss=f"{record['loss']:.3f}", mel=f"{record['mel']:.3f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                _save_checkpoint(checkpoint_path, model, optimizer, step, sampler, model_config)
    progress.close()
    if step < config.steps:
        _save_checkpoint(checkpoint_path, model, optimizer, step, sampler, model_config)
        print(f"stopped at step {step} of {config.steps} (time limit); continue with --resume")
    return model.save_pretrained(out / "model")


def _save_checkpoint(path: Path, model: CompactCodec, optimizer: torch.optim.Optimizer, step: int,
                     sampler: SegmentSampler, model_config: CompactCodecConfig) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "torch_rng": torch.get_rng_state(), "sampler_rng": json.dumps(sampler.rng.bit_generator.state),
             "model_config": model_config.to_dict()}
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
