"""The training loop that the codec and both stages share.

A trainer subclasses `Loop` and supplies what is its own: the model, optimiser and
batches, the loss of one batch, its learning-rate schedule, the state it checkpoints
beyond weights, optimiser and step, and held-out scores if it has any. The loop does
the rest the same way for all: gradient steps (accumulation, loss scaling, clipping
of every trained parameter), metrics lines, the progress bar, atomic checkpoints at a
fixed cadence holding all that an exact `--resume` needs, and a time limit that ends a
run as cleanly as its last step does.
"""

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch
from torch import Tensor, nn
from tqdm import tqdm

from valle.errors import ConfigError
from valle.files import atomic_write

CHECKPOINT, METRICS = "checkpoint.pt", "metrics.jsonl"


def linear_decay(step: int, peak: float, warmup: int, steps: int) -> float:
    """Linear warm-up to the peak, then linear decay to zero at the last step (the VALL-E paper's schedule)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (steps - step) / max(1, steps - warmup))


def cosine_decay(step: int, peak: float, warmup: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak (the codec's: it still learns at the end)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Metrics:
    """A run's metrics.jsonl, one JSON record a line, appended while open; a no-op where `writes` is false (ranks > 0)."""

    def __init__(self, path: Path, writes: bool) -> None:
        self.path, self.writes = path, writes
        self.file: IO | None = None

    def __enter__(self) -> "Metrics":
        if self.writes:
            self.file = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def write(self, record: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()  # curves can be plotted while the run goes on

    def keep_until(self, step: int) -> None:
        """Forget what was logged after `step` (a resumed run logs it again), rewriting the file atomically."""
        if not self.writes:
            return
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        with atomic_write(self.path) as f:
            f.writelines(line + "\n" for line in lines if json.loads(line)["step"] <= step)


@dataclass(frozen=True)
class Settings:
    """What the loop takes from a trainer's config."""

    steps: int  # the run's last step
    log_every: int
    checkpoint_every: int
    grad_clip: float
    grad_accumulation: int = 1  # batches per optimiser step
    valid_every: int = 0  # steps between held-out scores (0: only at the end)


class Loop(ABC):
    """Train to `settings.steps` with checkpoints, metrics and exact resume; subclasses supply the abstract methods.

    On several processes every rank runs the loop and builds each checkpoint's state
    (gathering random states is collective); only the `main` rank writes files.
    """

    name: str  # the progress bar's label
    shown: dict[str, str]  # the progress bar's values: label -> key of the training record

    def __init__(self, out: str | Path, settings: Settings, model: nn.Module, optimizer: torch.optim.Optimizer,
                 trained: Iterable[Tensor], device: torch.device | str, scaler: torch.amp.GradScaler | None = None,
                 main: bool = True) -> None:
        """`trained`: every parameter the optimiser steps, clipped together; `scaler`: fp16 loss scaling."""
        self.out, self.settings, self.device, self.main = Path(out), settings, device, main
        self.model, self.optimizer, self.trained = model, optimizer, list(trained)
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(enabled=False)
        self.metrics = Metrics(self.out / METRICS, main)
        self.step = 0

    # -- what a trainer supplies -------------------------------------------------------
    @abstractmethod
    def learning_rate(self, step: int) -> float:
        """The rate of the optimiser step after `step` steps."""

    @abstractmethod
    def batch_loss(self) -> tuple[Tensor, dict[str, float]]:
        """The loss of the next batch, and what to log of it."""

    @abstractmethod
    def save_model(self) -> None:
        """Write the trained model as its folder under `out` (main rank only)."""

    def held_out_scores(self) -> dict[str, float] | None:
        """Scores on held-out data, logged every `valid_every` steps and at the end; None: the run has none."""
        return None

    def state(self) -> dict:
        """All that an exact resume needs; a trainer adds its random states, its batches' position and its config."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step}

    def load_state(self, state: dict) -> None:
        """Continue from `state()`; a trainer first refuses a checkpoint of another config, then adds its own."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]

    def accumulating(self, last: bool) -> AbstractContextManager:
        """Where a batch's backward pass runs (DDP waits for the `last` batch of a step to average gradients)."""
        return nullcontext()

    def on_any_rank(self, flag: bool) -> bool:
        """Whether `flag` holds on some rank, so that all ranks stop together; one process is its only rank."""
        return flag

    # -- the loop ----------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        """One optimiser step over `grad_accumulation` batches; returns its training record."""
        self.model.train()
        lr = self.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches, loss, metrics = self.settings.grad_accumulation, 0.0, {}
        for batch in range(batches):
            with self.accumulating(last=batch == batches - 1):
                batch_loss, metrics = self.batch_loss()
                self.scaler.scale(batch_loss / batches).backward()
            loss += batch_loss.item() / batches
        self.scaler.unscale_(self.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(self.trained, self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {"step": self.step, "loss": loss, **metrics, "lr": lr, "grad_norm": float(grad_norm)}

    def fit(self, resume: bool = False, stop_after: int | None = None, time_limit: float | None = None,
            cpu_time: bool = False) -> nn.Module:
        """Train up to `settings.steps` (or `stop_after` steps in this call); returns the model.

        With `time_limit` (seconds) the run also stops once that much time has passed, with a
        checkpoint, its last record, held-out scores and the model as it is (a fixed budget on
        a lent machine; `--resume` goes on). `cpu_time` counts the CPU time of this process
        instead of wall time, so that runs that share a machine get equal budgets however busy it is.
        """
        clock = time.process_time if cpu_time else time.monotonic
        deadline = None if time_limit is None else clock() + time_limit
        if resume:
            self.resume()
        elif self.main and (self.out / CHECKPOINT).exists():
            raise ConfigError(f"{self.out} already holds a run; add --resume to continue it or choose another --out")
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        settings, steps = self.settings, self.settings.steps
        end = steps if stop_after is None else min(steps, self.step + stop_after)
        bar = tqdm(total=steps, initial=self.step, desc=self.name, unit="step", disable=not self.main)
        record = None
        with self.metrics:
            while self.step < end and not self._late(deadline, clock):
                record = self.train_step()
                bar.update(1)
                if self.step % settings.log_every == 0 or self.step == end:
                    self.metrics.write(record)
                    bar.set_postfix({label: f"{record[key]:.3f}" for label, key in self.shown.items()})
                if self.step == end or settings.valid_every and self.step % settings.valid_every == 0:
                    self._score()
                if self.step % settings.checkpoint_every == 0 or self.step == end:
                    self.save_checkpoint()
            timed_out = self.step < end
            if timed_out:  # keep what was learned, logged and scored, as at the end of a run
                self.save_checkpoint()
                if record is not None and self.step % settings.log_every:
                    self.metrics.write(record)
                self._score()
        bar.close()
        if self.main and timed_out:
            tqdm.write(f"stopped at step {self.step} of {steps} (time limit); continue with --resume")
        if self.main and (self.step == steps or timed_out):
            self.save_model()
        return self.model

    def _late(self, deadline: float | None, clock: Callable[[], float]) -> bool:
        return deadline is not None and self.on_any_rank(clock() >= deadline)

    def _score(self) -> None:
        scores = self.held_out_scores()
        if scores is not None:
            self.metrics.write({"step": self.step, **scores})

    def save_checkpoint(self) -> None:
        """Write `state()` through a temporary file, so that a kill mid-write leaves the last checkpoint whole."""
        state = self.state()
        if self.main:
            with atomic_write(self.out / CHECKPOINT, "wb") as f:
                torch.save(state, f)

    def resume(self) -> None:
        path = self.out / CHECKPOINT
        if not path.is_file():
            raise ConfigError(f"--resume given but {path} does not exist")
        self.load_state(torch.load(path, map_location=self.device, weights_only=True))
        self.metrics.keep_until(self.step)
