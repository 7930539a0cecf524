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
The steps, metrics and checkpoints (model, optimiser, step, random states, written
atomically every `checkpoint_every` steps, so that `--resume` continues an interrupted
run exactly) are the shared loop's (`valle.train.loop`).
It sits with the other training, after `valle.data`, whose manifests it reads.
"""

import json
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
from valle.codec.discriminators import Discriminators, adversarial_loss, discriminator_loss, feature_loss
from valle.codec.losses import MultiResolutionLoss, PhaseLoss
from valle.data.manifest import Utterance, read_manifest
from valle.errors import ConfigError
from valle.text.tokenizer import PhonemeTokenizer
from valle.train.loop import CHECKPOINT, Loop, Settings, cosine_decay


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
    adversarial_weight: float = 0.0  # > 0: the decoder also learns against waveform discriminators
    feature_weight: float = 2.0  # of the discriminators' feature matching, when adversarial
    decoder_only: bool = False  # encoder and codebooks frozen: the codes stay what they were
    phase_weight: float = 0.0  # > 0: the phases on the decoder's own STFT grid are judged too (`PhaseLoss`)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.segment_frames < 8:
            raise ConfigError("codec training needs steps >= 1, batch_size >= 1 and segment_frames >= 8")
        if self.content_weight < 0 or self.content_batch_size < 1 or self.content_max_seconds <= 0:
            raise ConfigError("content_weight must be >= 0, content_batch_size >= 1 and content_max_seconds > 0")
        if self.adversarial_weight < 0 or self.feature_weight < 0 or self.phase_weight < 0:
            raise ConfigError("adversarial_weight, feature_weight and phase_weight must be >= 0")
        if self.decoder_only and self.content_weight > 0:
            raise ConfigError("the content loss trains the encoder, which decoder_only freezes: use one of the two")


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


class CodecTrainer(Loop):
    """The codec's part of the loop: segments and their spectral and commitment losses, and the phone loss."""

    name, shown = "codec training", {"loss": "loss", "mel": "mel"}

    def __init__(self, manifests: list[Path], out: Path, model_config: CompactCodecConfig, config: CodecTrainConfig,
                 init: Path | None = None, device: str | None = None) -> None:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.config = config
        torch.manual_seed(config.seed)
        model = CompactCodec.from_pretrained(init, device) if init else CompactCodec(model_config).to(device)
        self.loss_fn = MultiResolutionLoss(model.config.sample_rate).to(device)
        self.phase_loss = PhaseLoss(model.config.n_fft, model.config.hop_length).to(device) \
            if config.phase_weight > 0 else None
        rows = [row for manifest in manifests for row in read_manifest(manifest)]
        audio = load_corpus_audio(rows, model.config.sample_rate)
        self.sampler = SegmentSampler(audio, config.segment_frames * model.config.hop_length, config.seed)
        self.content: PhoneCTC | None = None
        self.content_sampler: UtteranceSampler | None = None
        if config.content_weight > 0:
            ids, n_phones = phone_ids(rows)
            self.content_sampler = UtteranceSampler(audio, ids, round(config.content_max_seconds * model.config.sample_rate),
                                                    config.seed)
            self.content = PhoneCTC(model.config.latent_dim, n_phones).to(device)
        if config.decoder_only:
            model.requires_grad_(False).decoder.requires_grad_(True)
        trained = [p for p in model.parameters() if p.requires_grad]
        trained += list(self.content.parameters()) if self.content is not None else []
        optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, betas=(0.8, 0.99), weight_decay=config.weight_decay)
        self.discriminators: Discriminators | None = None
        if config.adversarial_weight > 0:
            self.discriminators = Discriminators().to(device)
            self.critic_optimizer = torch.optim.AdamW(self.discriminators.parameters(), lr=config.learning_rate,
                                                      betas=(0.8, 0.99), weight_decay=config.weight_decay)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") \
            else torch.autocast("cpu", enabled=False)
        super().__init__(out, Settings(config.steps, config.log_every, config.checkpoint_every, config.grad_clip),
                         model, optimizer, trained, device)
        self.started = time.monotonic()

    def learning_rate(self, step: int) -> float:
        return cosine_decay(step, self.config.learning_rate, self.config.warmup_steps, self.config.steps)

    def batch_loss(self) -> tuple[Tensor, dict[str, float]]:
        wav = self.sampler.batch(self.config.batch_size).to(self.device)
        with self.autocast:
            reconstruction, codes, commitment = self._reconstruct(wav)
        reconstruction = reconstruction.float()
        parts = self.loss_fn(reconstruction, wav)
        loss = parts["mel"] + parts["convergence"] + parts["log_magnitude"] + self.config.commitment_weight * commitment
        if self.phase_loss is not None:
            parts["phase"] = self.phase_loss(reconstruction, wav)
            loss = loss + self.config.phase_weight * parts["phase"]
        if self.discriminators is not None:
            parts |= self._adversarial_losses(wav, reconstruction)
            loss = loss + self.config.adversarial_weight * parts["adversarial"] + self.config.feature_weight * parts["features"]
        if self.content is not None:
            parts["content"] = self._content_loss()
            loss = loss + self.config.content_weight * parts["content"]
        return loss, {"commitment": commitment.item(), "levels_used": codes.shape[1], **{k: v.item() for k, v in parts.items()}}

    def _reconstruct(self, wav: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(reconstruction, codes, commitment loss); with `decoder_only`, through every level of frozen codes."""
        if not self.config.decoder_only:
            return self.model(wav)
        with torch.no_grad():
            codes = self.model.encode(wav)
            quantized = self.model.quantizer.decode(codes)
        return self.model._synthesise(quantized), codes, torch.zeros((), device=wav.device)

    def _adversarial_losses(self, wav: Tensor, reconstruction: Tensor) -> dict[str, Tensor]:
        """One step of the discriminators on this batch, then the decoder's losses against them."""
        critic = self.discriminators.requires_grad_(True)
        for group in self.critic_optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        critic_loss = discriminator_loss(critic(wav), critic(reconstruction.detach()))
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(critic.parameters(), self.config.grad_clip)
        self.critic_optimizer.step()
        critic.requires_grad_(False)
        with torch.no_grad():
            real = critic(wav)
        fake = critic(reconstruction)
        return {"critic": critic_loss.detach(), "adversarial": adversarial_loss(fake), "features": feature_loss(real, fake)}

    def _content_loss(self) -> Tensor:
        """CTC of the phone head on level 1 of a batch of whole utterances."""
        speech, samples, targets, target_lengths = self.content_sampler.batch(self.config.content_batch_size)
        with self.autocast:
            latents = self.model.first_level(speech.to(self.device))
        hop = self.model.config.hop_length
        frames = torch.div(samples + hop - 1, hop, rounding_mode="floor")
        return self.content(latents, frames.to(self.device), targets.to(self.device), target_lengths.to(self.device))

    def train_step(self) -> dict[str, float]:
        return super().train_step() | {"seconds": round(time.monotonic() - self.started, 1)}

    def save_model(self) -> None:
        self.model.save_pretrained(self.out / "model")

    def state(self) -> dict:
        state = super().state() | {"torch_rng": torch.get_rng_state(), "model_config": self.model.config.to_dict(),
                                   "sampler_rng": json.dumps(self.sampler.rng.bit_generator.state)}
        if self.discriminators is not None:
            state |= {"discriminators": self.discriminators.state_dict(), "critic_optimizer": self.critic_optimizer.state_dict()}
        if self.content is not None:
            state |= {"content": self.content.state_dict(),
                      "content_rng": json.dumps(self.content_sampler.rng.bit_generator.state)}
        return state

    def load_state(self, state: dict) -> None:
        if state["model_config"] != self.model.config.to_dict():
            raise ConfigError(f"{self.out / CHECKPOINT} was trained with another codec config; use a new --out folder")
        super().load_state(state)
        torch.set_rng_state(state["torch_rng"].cpu())
        self.sampler.rng.bit_generator.state = json.loads(state["sampler_rng"])
        if self.discriminators is not None:
            self.discriminators.load_state_dict(state["discriminators"])
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.content is not None:
            self.content.load_state_dict(state["content"])
            self.content_sampler.rng.bit_generator.state = json.loads(state["content_rng"])


def train_codec(manifests: list[Path], out: Path, model_config: CompactCodecConfig = CompactCodecConfig(),
                config: CodecTrainConfig = CodecTrainConfig(), resume: bool = False, init: Path | None = None,
                device: str | None = None, time_limit: float | None = None) -> Path:
    """Train and write `out/model` (see `CompactCodec.from_pretrained`); returns that folder.

    `init` starts from a pretrained codec's weights; `time_limit` (seconds) ends the
    run early, cleanly checkpointed, for jobs on a scheduler with a wall-clock limit.
    """
    CodecTrainer(manifests, out, model_config, config, init, device).fit(resume, time_limit=time_limit)
    return Path(out) / "model"
