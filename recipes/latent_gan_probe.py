"""Does a discriminator give the frame stage's latents back the detail of a voice that their regression averages?

The stage regresses each frame's latent (L1 plus squared error): the mean of what the frame might be,
which keeps the words and loses the departures that make a voice (recipes/tournament.md). A flow
head and an AR over the lowest levels, at the budgets tried, sampled departures that were not the
voice's. HiFi-GAN, GAN-TTS and the adversarial FastSpeech variants get their detail from a
discriminator instead: here one reads windows of latents, real or rendered at the true durations,
beside the prompt's real latents' mean and spread (a voice-conditioned patch discriminator, least
squares as in HiFi-GAN, with feature matching), and the stage learns against it on top of its own
losses. Same budget, folders, schedule and warm start as the arms of `frames_plain_bundled.json`,
so that its control is that arm.

    MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 nice python recipes/latent_gan_probe.py \
        recipes/tournament/frames_plain_bundled.json OUT MINUTES ADV FM FOLDER ...   # RESUME=1: continue OUT; STEPS=N: the config's steps
"""

import os
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from valle.model.layers import lengths_to_mask
from valle.train.config import TrainConfig
from valle.train.trainer import Trainer

NOISE = 0.1  # instance noise on both inputs, in units of the scaled latent: hides the codebooks' lattice


class Discriminator(nn.Module):
    """Per-frame scores of a latent sequence `[B, T, D]` given its prompt's latents' mean and spread `[B, 2D]`."""

    def __init__(self, latent_dim: int, width: int = 256) -> None:
        super().__init__()
        dims = [(latent_dim * 3, width, 1), (width, width, 2), (width, width, 4), (width, width, 8)]
        self.layers = nn.ModuleList(nn.utils.parametrizations.weight_norm(nn.Conv1d(i, o, 5, padding=2 * d, dilation=d))
                                    for i, o, d in dims)
        self.out = nn.Conv1d(width, 1, 3, padding=1)

    def forward(self, latent: Tensor, voice: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = torch.cat([latent, voice[:, None].expand(-1, latent.shape[1], -1)], dim=-1).transpose(1, 2)
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            features.append(x)
        return self.out(x)[:, 0], features


class AdversarialTrainer(Trainer):
    name = "training frames against a discriminator"

    def __init__(self, config: TrainConfig, data: list[str], out: str, adversarial: float, matching: float,
                 valid: str) -> None:
        super().__init__(config, data, out, valid=valid)
        self.adversarial, self.matching = adversarial, matching
        self.discriminator = Discriminator(self.model.config.latent_dim)
        self.d_optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=2e-4, betas=(0.8, 0.99))

    def batch_loss(self) -> tuple[Tensor, dict[str, float]]:
        """The stage's batch and losses as `Trainer` makes them, read off its forward pass, and the two players' terms."""
        seen = {}
        hook = self.model.register_forward_hook(lambda _, inputs, output: seen.update(inputs=inputs, out=output))
        try:
            loss, metrics = super().batch_loss()
        finally:
            hook.remove()
        _, _, codes, code_lens, _, prompt, prompt_lens, *_ = seen["inputs"]
        out = seen["out"]
        scale = self.model.latent_scale
        valid = lengths_to_mask(code_lens, codes.shape[2]).float()
        real = self.model.latents(codes) / scale
        fake = out.latent / scale
        prompt_real = self.model.latents(prompt) / scale
        prompt_valid = lengths_to_mask(prompt_lens, prompt.shape[2])[..., None].float()
        n = prompt_valid.sum(1)
        mean = (prompt_real * prompt_valid).sum(1) / n
        spread = (((prompt_real - mean[:, None]) ** 2 * prompt_valid).sum(1) / n).sqrt()
        voice = torch.cat([mean, spread], dim=1)

        def noisy(x: Tensor) -> Tensor:
            return x + NOISE * torch.randn_like(x)

        def masked(x: Tensor) -> Tensor:
            return (x * valid).sum() / valid.sum()

        # The discriminator's step, on the rendering as it stands.
        score_real, _ = self.discriminator(noisy(real), voice)
        score_fake, _ = self.discriminator(noisy(fake.detach()), voice)
        d_loss = masked((score_real - 1) ** 2) + masked(score_fake ** 2)
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()

        # The stage's: its own losses, fooling the discriminator, and matching its features of the real frames.
        score_fake, fake_features = self.discriminator(noisy(fake), voice)
        _, real_features = self.discriminator(noisy(real), voice)
        g_loss = masked((score_fake - 1) ** 2)
        matching = sum(masked((f - r.detach()).abs().mean(1)) for f, r in zip(fake_features, real_features)) / len(fake_features)
        loss = loss + self.adversarial * g_loss + self.matching * matching
        return loss, metrics | {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "matching": matching.item()}

    def state(self) -> dict:
        return super().state() | {"discriminator": self.discriminator.state_dict(),
                                  "d_optimizer": self.d_optimizer.state_dict()}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.discriminator.load_state_dict(state["discriminator"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])


if __name__ == "__main__":
    config_path, out, minutes, adversarial, matching, *folders = sys.argv[1:]
    config = TrainConfig.load(Path(config_path))
    config = replace(config, steps=int(os.environ["STEPS"])) if "STEPS" in os.environ else config
    trainer = AdversarialTrainer(config, folders, out, float(adversarial), float(matching), valid="runs/tokens/valid")
    trainer.fit(resume=os.environ.get("RESUME") == "1", time_limit=float(minutes) * 60, cpu_time=True)
