"""Train the compact codec on the audio of one or more manifests.

Random fixed-length segments are cut from utterances held in memory (int16), the
codec reconstructs them through its quantiser, and multi-resolution spectral losses
plus the commitment loss drive the encoder and decoder; codebooks follow by EMA.

With `content_weight > 0` the first level is also made to carry the words: a linear
head reads the level-1 quantised latents of whole utterances and is trained with CTC
against their phones (SpeechTokenizer and Mimi distil semantics into their first
level; FACodec supervises its content codes with phones). The gradient reaches the
encoder through the straight-through quantiser, so the latent's leading direction, the
one level 1 quantises, becomes phonetic; the head is used in training only.
Checkpoints (model, optimiser, step, random states) are written atomically every
`checkpoint_every` steps, so `--resume` continues an interrupted run.
It sits with the other training, after `valle.data`, whose manifests it reads.
"""

import json
import math
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from valle.audio import load_audio
from valle.codec.compact import CompactCodec, CompactCodecConfig
from valle.codec.losses import MultiResolutionLoss
from valle.data.manifest import Utterance, read_manifest
from valle.errors import ConfigError
from valle.files import atomic_write
from valle.text.tokenizer import PhonemeTokenizer

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
    content_weight: float = 0.0  # > 0: level 1 learns the phones (CTC on whole utterances)
    content_batch_size: int = 4
    content_max_seconds: float = 4.0  # utterances up to this long feed the content loss (whole: CTC needs all its text)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.segment_frames < 8:
            raise ConfigError("codec training needs steps >= 1, batch_size >= 1 and segment_frames >= 8")
        if self.content_weight < 0 or self.content_batch_size < 1 or self.content_max_seconds <= 0:
            raise ConfigError("content_weight must be >= 0, content_batch_size >= 1 and content_max_seconds > 0")


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


def phones(tokens: list[str]) -> list[str]:
    """The tokens that are sounds: stress marks, word gaps and punctuation take no frames of their own."""
    return [t for t in tokens if t != "_" and not all(unicodedata.category(c)[0] in "PS" or c in "ˈˌ" for c in t)]


class UtteranceSampler:
    """Random batches of whole short utterances with their phone ids (1.., 0 is CTC's blank)."""

    def __init__(self, utterances: list[np.ndarray], phone_ids: list[list[int]], max_samples: int, seed: int) -> None:
        kept = [i for i, (u, p) in enumerate(zip(utterances, phone_ids)) if len(u) <= max_samples and p]
        if not kept:
            raise ConfigError("no utterance is short enough for the content loss; raise content_max_seconds")
        self.utterances, self.phone_ids = [utterances[i] for i in kept], [phone_ids[i] for i in kept]
        self.rng = np.random.default_rng(seed + 1)

    def batch(self, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(audio `[B, S]` zero-padded, samples `[B]`, phone ids concatenated, phones `[B]`)."""
        picked = self.rng.choice(len(self.utterances), size=min(size, len(self.utterances)), replace=False)
        samples = torch.tensor([len(self.utterances[i]) for i in picked])
        audio = torch.zeros(len(picked), int(samples.max()))
        for row, i in enumerate(picked):
            audio[row, :len(self.utterances[i])] = torch.from_numpy(self.utterances[i] / 32768.0)
        targets = [torch.tensor(self.phone_ids[i]) for i in picked]
        return audio, samples, torch.cat(targets), torch.tensor([len(t) for t in targets])


class PhoneCTC(nn.Module):
    """A linear phone classifier on the codec's level-1 latents, scored by CTC."""

    def __init__(self, latent_dim: int, n_phones: int) -> None:
        super().__init__()
        self.head = nn.Linear(latent_dim, n_phones + 1)

    def forward(self, latents: Tensor, frames: Tensor, targets: Tensor, target_lengths: Tensor) -> Tensor:
        log_probs = self.head(latents.float()).log_softmax(-1).transpose(0, 1)  # [T, B, C]
        return F.ctc_loss(log_probs, targets, frames, target_lengths, blank=0, zero_infinity=True)


def phone_ids(rows: list[Utterance]) -> tuple[list[list[int]], int]:
    """Each row's phones as ids from 1 (0 is the blank), and how many distinct phones there are."""
    tokenizer, table = PhonemeTokenizer(), {}
    sequences = [[table.setdefault(t, len(table) + 1) for t in phones(tokenizer.phonemize(row.text, row.language))]
                 for row in tqdm(rows, desc="phonemising", unit="utt")]
    return sequences, len(table)


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
    loss_fn = MultiResolutionLoss(model_config.sample_rate).to(device)
    rows = [row for manifest in manifests for row in read_manifest(manifest)]
    audio = load_corpus_audio(rows, model_config.sample_rate)
    sampler = SegmentSampler(audio, config.segment_frames * model_config.hop_length, config.seed)
    content, content_sampler = None, None
    if config.content_weight > 0:
        ids, n_phones = phone_ids(rows)
        content_sampler = UtteranceSampler(audio, ids, round(config.content_max_seconds * model_config.sample_rate), config.seed)
        content = PhoneCTC(model_config.latent_dim, n_phones).to(device)
    trained = list(model.parameters()) + (list(content.parameters()) if content is not None else [])
    optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, betas=(0.8, 0.99), weight_decay=config.weight_decay)

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
        if content is not None:
            content.load_state_dict(state["content"])
            content_sampler.rng.bit_generator.state = json.loads(state["content_rng"])
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
            if content is not None:
                speech, samples, targets, target_lengths = content_sampler.batch(config.content_batch_size)
                with autocast:
                    latents = model.first_level(speech.to(device))
                frames = torch.div(samples + model_config.hop_length - 1, model_config.hop_length, rounding_mode="floor")
                parts["content"] = content(latents, frames.to(device), targets.to(device), target_lengths.to(device))
                loss = loss + config.content_weight * parts["content"]
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
                _save_checkpoint(checkpoint_path, model, optimizer, step, sampler, model_config, content, content_sampler)
    progress.close()
    if step < config.steps:
        _save_checkpoint(checkpoint_path, model, optimizer, step, sampler, model_config, content, content_sampler)
        print(f"stopped at step {step} of {config.steps} (time limit); continue with --resume")
    return model.save_pretrained(out / "model")


def _save_checkpoint(path: Path, model: CompactCodec, optimizer: torch.optim.Optimizer, step: int,
                     sampler: SegmentSampler, model_config: CompactCodecConfig, content: PhoneCTC | None,
                     content_sampler: UtteranceSampler | None) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "torch_rng": torch.get_rng_state(), "sampler_rng": json.dumps(sampler.rng.bit_generator.state),
             "model_config": model_config.to_dict()}
    if content is not None and content_sampler is not None:
        state |= {"content": content.state_dict(), "content_rng": json.dumps(content_sampler.rng.bit_generator.state)}
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
