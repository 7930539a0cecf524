"""Training throughput: tokens (phonemes + frames) per second for each stage and preset.

Times full optimiser steps (forward, backward, AdamW) on batches shaped like the
synthetic corpus (about 5 s utterances at 50 Hz with 60 phonemes), after a warm-up
step, on this machine's CPU (and its GPU, if `--device cuda`).

    python benchmarks/train_throughput.py --presets paper small --steps 3
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from valle.model import ARModel, NARBatch, NARModel, preset
from valle.model.nar import split_prompt


def batch(n: int, phonemes: int, frames: int, config, device: str):
    g = torch.Generator().manual_seed(0)
    p = torch.randint(0, config.n_phonemes, (n, phonemes), generator=g).to(device)
    codes = torch.randint(0, config.codebook_size, (n, config.n_codebooks, frames), generator=g).to(device)
    lens_p, lens_c = torch.full((n,), phonemes, device=device), torch.full((n,), frames, device=device)
    return p, lens_p, codes, lens_c


def measure(stage: str, name: str, utterances: int, steps: int, device: str) -> dict:
    config = preset(name, n_phonemes=111, codebook_size=1024, n_codebooks=8)
    model = (ARModel if stage == "ar" else NARModel)(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    phonemes, frames = 60, 250
    p, lp, codes, lc = batch(utterances, phonemes, frames, config, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with autocast:
            if stage == "ar":
                loss = model(p, lp, codes, lc).loss
            else:
                prompt, prompt_lens, target, target_lens = split_prompt(codes, lc, 150)
                level = torch.randint(config.ar_levels, config.n_codebooks, (utterances,), device=device)
                loss = model(NARBatch(p, lp, prompt, prompt_lens, target, target_lens, level)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    tokens = utterances * (phonemes + frames)
    return {"stage": stage, "preset": name, "parameters_m": sum(x.numel() for x in model.parameters()) / 1e6,
            "batch_utterances": utterances, "tokens_per_step": tokens, "seconds_per_step": seconds,
            "tokens_per_second": tokens / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["paper", "small"])
    parser.add_argument("--utterances", type=int, default=8, help="utterances per batch (5 s each)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = (torch.cuda.get_device_name() if args.device.startswith("cuda")
               else f"{platform.processor() or platform.machine()}, {args.threads} threads")
    rows = [measure(stage, name, args.utterances, args.steps, args.device) for name in args.presets for stage in ("ar", "nar")]
    print(f"\ntraining throughput on {machine} (batch {args.utterances} x (60 phonemes + 250 frames), fp32 on CPU, bf16 on GPU)\n")
    print("| preset | stage | parameters | s/step | tokens/s |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['stage']} | {r['parameters_m']:.1f} M | {r['seconds_per_step']:.2f} | {r['tokens_per_second']:,.0f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train_throughput_{args.device.split(':')[0]}.json"
    path.write_text(json.dumps({"machine": machine, "device": args.device, "rows": rows}, indent=1))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
