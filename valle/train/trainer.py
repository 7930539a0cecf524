"""One trainer for both stages, from a laptop CPU to `torchrun` on many GPUs.

Batches come from tokenised shards through the duration-bucketed sampler; the loss
is the stage's own (next-token for AR, level-l prediction with a prompt cut from the
same utterance for NAR). Mixed precision (bf16 on CUDA), gradient accumulation,
clipping, linear warm-up then linear decay (the paper's schedule). Rank 0 writes
metrics and checkpoints; a checkpoint holds everything a run depends on (weights,
optimiser, step, sampler position, every rank's random state), so `--resume`
continues exactly where the last checkpoint left off.
"""

import json
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from valle.data.shards import TokenizedCorpus
from valle.errors import ConfigError
from valle.files import atomic_write
from valle.model.ar import ARModel
from valle.model.config import preset
from valle.model.nar import NARBatch, NARModel, split_prompt
from valle.model.stage import Stage, TrainedOn
from valle.train.batching import BucketBatchSampler, SamplerState, collate
from valle.train.config import TrainConfig
from valle.train.validate import heldout_metrics

CHECKPOINT, METRICS = "checkpoint.pt", "metrics.jsonl"
LATEST = "latest"  # the weights of the last checkpoint as a stage folder: a run in progress can be tried out
# What a resumed run may change: training longer (the decay stretches to the new end) or logging differently.
RESUMABLE_CHANGES = ("steps", "log_every", "checkpoint_every", "valid_every", "valid_utterances")


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank), joining the process group that torchrun describes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up to the peak, then linear decay to zero at the last step."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    return config.learning_rate * max(0.0, (config.steps - step) / max(1, config.steps - config.warmup_steps))


def warm_start(model: nn.Module, stage: str | Path) -> dict[str, list[str]]:
    """Copy into `model` every tensor of the trained `stage` folder with the same name and shape.

    Returns the names `copied` and those left `fresh`; refuses a source that shares no
    weight matrix (another size: only a bias or a scale would match).
    """
    source = Stage.from_pretrained(stage)
    theirs, mine = source.state_dict(), model.state_dict()
    copied = [name for name, tensor in mine.items() if name in theirs and theirs[name].shape == tensor.shape]
    if not any(mine[name].ndim >= 2 for name in copied):
        raise ConfigError(f"init: {stage} shares no weight matrix with this model (names and shapes); start from a "
                          "stage of the same preset and stage kind")
    model.load_state_dict({name: theirs[name] for name in copied}, strict=False)
    return {"copied": copied, "fresh": [name for name in mine if name not in copied]}


class Trainer:
    def __init__(self, config: TrainConfig, data: str | Path, out: str | Path, device: str | None = None,
                 valid: str | Path | None = None) -> None:
        """`valid`: tokenised utterances of held-out speakers, scored every `config.valid_every` steps and at the end."""
        self.config, self.out = config, Path(out)
        self.rank, self.world_size, local_rank = _distributed()
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(config.seed)  # identical initial weights on every rank

        self.corpus = TokenizedCorpus(data)
        self.valid = TokenizedCorpus(valid) if valid is not None and self.rank == 0 else None
        codec = self.corpus.codec
        self.model_config = preset(config.preset, n_phonemes=len(self.corpus.vocab), n_codebooks=codec.n_codebooks,
                                   codebook_size=codec.codebook_size, **config.model)
        self.model = (ARModel if config.stage == "ar" else NARModel)(self.model_config).to(self.device)
        if config.init is not None:  # a resumed run's checkpoint replaces these weights again
            started = warm_start(self.model, config.init)
            if self.rank == 0:
                fresh = sorted({name.split(".")[0] for name in started["fresh"]})
                tqdm.write(f"started from {config.init}: {len(started['copied'])} tensors copied; "
                           f"fresh: {', '.join(fresh) or 'none'}")
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids) if self.world_size > 1 else self.model
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.ndim < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}],
                                           lr=config.learning_rate, betas=(0.9, 0.95))
        precision = config.precision if config.precision != "auto" else ("bf16" if self.device.type == "cuda" else "fp32")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        self.scaler = torch.amp.GradScaler(enabled=precision == "fp16")
        self.sampler = BucketBatchSampler(self.corpus.n_phonemes, self.corpus.n_frames, config.max_tokens, config.seed,
                                          self.rank, self.world_size, config.max_frames)
        self.generator = torch.Generator().manual_seed(config.seed * 7919 + self.rank)  # NAR prompts and levels
        self.max_prompt = max(1, round(config.nar_prompt_seconds * codec.frame_rate))
        self.step = 0
        self.hours = 0.0  # of training steps so far, over every resumed part of the run: curves against time

    # -- one step ----------------------------------------------------------------------
    def _loss(self) -> tuple[Tensor, dict[str, float], int]:
        phonemes, phoneme_lens, codes, code_lens = (t.to(self.device) for t in collate(
            [self.corpus[i] for i in self.sampler.next_batch()]))
        tokens = int(phoneme_lens.sum() + code_lens.sum())
        with self.autocast:
            if self.config.stage == "ar":
                out = self.ddp(phonemes, phoneme_lens, codes, code_lens)
            else:
                prompt, prompt_lens, target, target_lens = split_prompt(codes, code_lens, self.max_prompt, self.generator)
                level = torch.randint(self.model_config.ar_levels, self.model_config.n_codebooks, (len(code_lens),),
                                      generator=self.generator).to(self.device)
                out = self.ddp(NARBatch(phonemes, phoneme_lens, prompt, prompt_lens, target, target_lens, level))
        metrics = {"accuracy": out.accuracy.item()}
        if self.config.stage == "nar" or self.model_config.ar_levels > 1:
            metrics |= {f"accuracy_level{level + 1}": hits / n for level, (_, hits, n) in out.level_sums().items()}
        return out.loss, metrics, tokens

    def train_step(self) -> dict[str, float]:
        self.ddp.train()
        lr = learning_rate(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        started, total_loss, tokens, metrics = time.perf_counter(), 0.0, 0, {}
        for micro in range(self.config.grad_accumulation):
            last = micro == self.config.grad_accumulation - 1
            sync = nullcontext() if last or self.world_size == 1 else self.ddp.no_sync()
            with sync:
                loss, metrics, n = self._loss()
                self.scaler.scale(loss / self.config.grad_accumulation).backward()
            total_loss += loss.item() / self.config.grad_accumulation
            tokens += n
        self.scaler.unscale_(self.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        seconds = time.perf_counter() - started
        self.hours += seconds / 3600
        return {"step": self.step, "loss": total_loss, **metrics, "lr": lr, "grad_norm": float(grad_norm),
                "tokens_per_second": tokens * self.world_size / seconds, "epoch": self.sampler.state.epoch, "hours": self.hours}

    # -- the run -----------------------------------------------------------------------
    def _out_of_time(self, deadline: float | None, clock: Callable[[], float]) -> bool:
        """Whether the time limit has passed, agreed by every rank (so that none waits for another's step)."""
        if deadline is None:
            return False
        late = torch.tensor([float(clock() >= deadline)], device=self.device)
        if self.world_size > 1:
            dist.all_reduce(late, op=dist.ReduceOp.MAX)
        return bool(late.item())

    def fit(self, resume: bool = False, stop_after: int | None = None, time_limit: float | None = None,
            cpu_time: bool = False) -> nn.Module:
        """Train up to `config.steps` (or `stop_after` steps in this call); returns the model.

        With `time_limit` (seconds) the run also stops once that much time has passed, with a
        checkpoint and the model as it is (a fixed budget on a lent machine; `--resume` goes on).
        `cpu_time` counts the CPU time of this process instead of wall time, so that runs that
        share a machine get equal budgets however busy it is.
        """
        clock = time.process_time if cpu_time else time.monotonic
        deadline = None if time_limit is None else clock() + time_limit
        if resume:
            self.load_checkpoint()
        elif self.rank == 0 and (self.out / CHECKPOINT).exists():
            raise ConfigError(f"{self.out} already holds a run; add --resume to continue it or choose another --out")
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        end = self.config.steps if stop_after is None else min(self.config.steps, self.step + stop_after)
        bar = tqdm(total=self.config.steps, initial=self.step, desc=f"training {self.config.stage}", unit="step",
                   disable=self.rank != 0)
        record = None
        with open(self.out / METRICS, "a", encoding="utf-8") if self.rank == 0 else nullcontext() as metrics:
            while self.step < end and not self._out_of_time(deadline, clock):
                record = self.train_step()
                bar.update(1)
                if self.rank == 0 and (self.step % self.config.log_every == 0 or self.step == end):
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                    bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
                if self.valid is not None and (self.step == end or self.config.valid_every and self.step % self.config.valid_every == 0):
                    metrics.write(json.dumps({"step": self.step, "hours": self.hours, **self.validate()}) + "\n")
                    metrics.flush()
                if self.step % self.config.checkpoint_every == 0 or self.step == end:
                    self.save_checkpoint()
            timed_out = self.step < end
            if timed_out:  # the time limit: keep what was learned, logged and scored, as at the end of a run
                self.save_checkpoint()
                if self.rank == 0 and record is not None and self.step % self.config.log_every:
                    metrics.write(json.dumps(record) + "\n")
                if self.valid is not None:
                    metrics.write(json.dumps({"step": self.step, "hours": self.hours, **self.validate()}) + "\n")
        bar.close()
        if self.rank == 0 and (self.step == self.config.steps or timed_out):
            self.model.save_pretrained(self.out / "model", TrainedOn(self.corpus.vocab, self.corpus.codec))
        return self.model

    def validate(self) -> dict[str, float]:
        """Held-out metrics of the model as it is now, keys prefixed `valid_` (rank 0 only)."""
        metrics = heldout_metrics(self.model, self.valid, self.config.max_tokens, self.config.valid_utterances,
                                  self.config.nar_prompt_seconds, self.config.seed)
        return {f"valid_{key}": value for key, value in metrics.items()}

    def _rng_states(self) -> list[dict]:
        state = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.world_size == 1:
            return [state]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def save_checkpoint(self) -> None:
        rng = self._rng_states()  # a collective: every rank takes part
        if self.rank != 0:
            return
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "step": self.step, "hours": self.hours, "sampler": vars(self.sampler.state).copy(), "rng": rng,
                 "config": json.dumps(self.config.to_dict()), "world_size": self.world_size}
        with atomic_write(self.out / CHECKPOINT, "wb") as f:
            torch.save(state, f)
        self.model.save_pretrained(self.out / LATEST, TrainedOn(self.corpus.vocab, self.corpus.codec))

    def load_checkpoint(self) -> None:
        path = self.out / CHECKPOINT
        if not path.is_file():
            raise ConfigError(f"--resume given but {path} does not exist")
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved, now = json.loads(state["config"]), self.config.to_dict()
        changed = sorted(k for k in saved.keys() | now.keys() if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
        if changed:
            raise ConfigError(f"{path} was written with another training config ({', '.join(changed)} differ); resume with "
                              f"the same --config and --stage (only {', '.join(RESUMABLE_CHANGES)} may change)")
        if state["world_size"] != self.world_size:
            raise ConfigError(f"{path} was written by {state['world_size']} processes; resume with as many")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.hours = state["step"], state.get("hours", 0.0)
        self.sampler.state = SamplerState(**state["sampler"])
        rng = state["rng"][self.rank]
        torch.set_rng_state(rng["torch"].cpu())
        self.generator.set_state(rng["generator"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        if self.rank == 0:  # forget what was logged after the checkpoint: it will be logged again
            metrics = self.out / METRICS
            kept = [line for line in metrics.read_text().splitlines() if json.loads(line)["step"] <= self.step] \
                if metrics.exists() else []
            with atomic_write(metrics) as f:
                f.writelines(line + "\n" for line in kept)
