"""`valle train`: its options and what it runs.

They live here, below the CLI, so that `python -m valle.train` (the form torchrun
launches on every rank) parses the same options without importing the CLI above it.
"""

import argparse
from pathlib import Path

HELP = "train the AR, NAR or frame stage on tokenised shards (also under torchrun)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", choices=["ar", "nar", "frames"], help="overrides the config's stage")
    p.add_argument("--config", type=Path, help="JSON with TrainConfig fields (default: the built-in config)")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="one or more folders written by `valle data "
                   "tokenize` (several are read as one corpus)")
    p.add_argument("--valid", type=Path, help="tokenised held-out speakers, scored every valid_every steps and at the end")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoints, metrics and the final model")
    p.add_argument("--steps", type=int, help="overrides the config's steps")
    p.add_argument("--init", help="overrides the config's init: the trained stage (a model folder) to start from")
    p.add_argument("--device", help="cpu, cuda, ... (default: this process's GPU when there is one)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--time-limit", type=float, help="stop after this many minutes with a checkpoint and the model as it is")
    p.add_argument("--cpu-time", action="store_true", help="count --time-limit in this process's CPU time (equal budgets "
                   "for runs that share a machine)")


def run(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from valle.train.config import TrainConfig
    from valle.train.trainer import Trainer

    config = TrainConfig.load(args.config) if args.config else TrainConfig()
    overrides = {k: v for k, v in (("stage", args.stage), ("steps", args.steps), ("init", args.init)) if v is not None}
    trainer = Trainer(replace(config, **overrides), args.data, args.out, device=args.device, valid=args.valid)
    trainer.fit(resume=args.resume, time_limit=args.time_limit and args.time_limit * 60, cpu_time=args.cpu_time)
    if trainer.rank == 0:
        print(f"trained {trainer.config.stage} to step {trainer.step}: model in {args.out / 'model'}, "
              f"metrics in {args.out / 'metrics.jsonl'} (plot them with `valle plot`)")
