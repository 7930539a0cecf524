"""Inference speed against what the hardware allows, measured in one run.

- Memory bandwidth of this machine: the best of several copies of a 512 MB tensor
  (read + write bytes over time), measured before and after each of 3 rounds of steps
  (a shared machine drifts); the fastest round is set against the highest bandwidth.
- AR decode step at batch 1 (KV cache, a 3 s prompt and 100 phonemes before it) against
  the bandwidth bound: every step must read every weight and every cached key and value
  once, so no step can take less than those bytes / bandwidth. Target: <= 1.5x the bound.
  Beside it, the kernel floor: the step's matrix-vector products alone, run in order with
  the same weights, which is what PyTorch's kernels need before any other work.
- KV cache against recomputing the whole sequence at every step, for 5, 10 and 20 s of
  speech. Decoding with the cache is timed whole (best of 3); recomputation is timed as
  full forward passes at 8 lengths (best of 2 each) and integrated over the steps
  (trapezoids), because doing every step of the paper-size model would take hours.
  Target: cache >= 10x faster at 10 s.
- NAR: the 7 levels of 10 s of speech; codec encode and decode of 10 s.
- Batched decoding: frames per second over all requests at batch 1, 4 and 8, which is
  what a server or a batch job gains when single-stream decoding leaves the bound unmet.
- End to end: real-time factor of `valle synthesize` with the bundled model and prompt.

Models: the bundled model's AR (its real size and group size) and the paper-size preset
(random weights: speed does not depend on them), with weights in each of `--dtypes`.
CPU by default; `--device cuda` on a GPU.

    python benchmarks/decode_speed.py --threads 2 --dtypes float32 bfloat16
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from targets import report
from torch import nn

from valle.model import ARModel, ModelConfig, preset
from valle.pretrained import DTYPES

PROMPT_SECONDS, PHONEMES, FRAME_RATE = 3.0, 100, 50.0
ROUNDS = 3


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def wall_times(fn, repeat: int) -> list[float]:
    """Wall time of each of `repeat` calls, seconds (CUDA synchronised)."""
    times = []
    for _ in range(repeat):
        sync()
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return times


def timed(fn, repeat: int = 1) -> float:
    """Best wall time of `repeat` calls, seconds."""
    return min(wall_times(fn, repeat))


def median_time(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls, seconds: one decoding step is too short for its best to be typical."""
    return float(np.median(wall_times(fn, repeat)))


def bandwidth(device: str, megabytes: int = 512) -> float:
    """Bytes per second of a large copy (each byte read once and written once)."""
    src = torch.ones(megabytes * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    seconds = timed(lambda: dst.copy_(src), repeat=5)
    return 2 * src.numel() * 4 / seconds


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


class Decoder:
    """The AR stage's decode loop without sampling: always the most likely audio token."""

    def __init__(self, model: ARModel, device: str) -> None:
        self.model, self.device, self.g, self.k = model, device, model.config.group_size, model.config.ar_levels
        gen = torch.Generator().manual_seed(0)
        self.phonemes = torch.randint(0, model.config.n_phonemes, (PHONEMES,), generator=gen).to(device)
        frames = int(PROMPT_SECONDS * FRAME_RATE) // self.g * self.g
        self.prompt = torch.randint(0, model.config.codebook_size, (self.k, frames), generator=gen).to(device)

    def cached(self, new_frames: int, batch: int = 1) -> float:
        """Seconds to decode `new_frames` frames for each of `batch` requests with the KV cache (prefill included)."""
        no_eos = lambda logits, history, level: int(logits[: self.model.eos].argmax())  # noqa: E731
        return timed(lambda: self.model.generate_batch([self.phonemes] * batch, [self.prompt] * batch, [new_frames] * batch,
                                                       [no_eos] * batch), repeat=ROUNDS)

    def forward(self, n_new: int = 0, room: int | None = None) -> tuple[torch.Tensor, list | None, int]:
        """A full forward pass over phonemes, prompt and `n_new` more groups: (hidden, KV cache, groups so far).

        With `room`, the pass fills a KV cache with space for that many more positions.
        """
        m, g, k = self.model, self.g, self.k
        frames = torch.cat([torch.full((g, k), m.bos, device=self.device), self.prompt.T,
                            torch.zeros(n_new * g, k, dtype=torch.long, device=self.device)])[None]
        n = frames.shape[1] // g
        x = torch.cat([m._embed_text(self.phonemes[None]), m._embed_audio(frames, torch.arange(n, device=self.device)[None])], 1)
        mask = m.prefix_mask(torch.ones(1, PHONEMES, dtype=torch.bool, device=self.device),
                             torch.ones(1, n, dtype=torch.bool, device=self.device))
        cache = m.new_cache(1, x.shape[1] + room, x) if room is not None else None
        hidden = m._run(x, mask, cache)
        self.greedy_step(hidden[:, -1])
        return hidden, cache, n

    def greedy_step(self, last: torch.Tensor) -> torch.Tensor:
        """The most likely audio tokens of one step, `[1, g, k]`."""
        return self.model.step_tokens(last, lambda position, logits: logits[:, : self.model.eos].argmax(-1)).view(1, self.g, self.k)

    def step(self, steps: int = 100) -> tuple[float, int]:
        """Median seconds of one cached decode step (one group of frames) after the prefill,
        and the mean number of cached positions that a step reads."""
        m = self.model
        hidden, cache, n = self.forward(room=steps)
        prefill = cache[0].length

        def one_step() -> None:
            nonlocal hidden, n
            group = self.greedy_step(hidden[:, -1])
            hidden = m._run(m._embed_audio(group, torch.tensor([[n]], device=self.device)), None, cache)
            n += 1

        return median_time(one_step, steps), prefill + (steps + 1) // 2

    def kernel_floor(self, steps: int = 100) -> float:
        """Median seconds of the step's matrix-vector products alone, in the order a step runs them."""
        m = self.model
        depth = [module for module in m.depth.modules() if isinstance(module, nn.Linear)] if self.k > 1 else []
        per_token = [m.head] if self.k == 1 else depth * (self.g * self.k)
        linears = [module for module in m.layers.modules() if isinstance(module, nn.Linear)] + per_token
        dtype = m.text_embedding.weight.dtype
        inputs = [torch.randn(1, 1, layer.in_features, dtype=dtype, device=self.device) for layer in linears]
        return median_time(lambda: [layer(x) for layer, x in zip(linears, inputs)], steps)

    def recompute(self, new_frames: int, points: int = 8) -> float:
        """Seconds to decode `new_frames` frames by a full forward pass per step (integrated from `points` lengths)."""
        steps = new_frames // self.g
        lengths = np.unique(np.linspace(1, steps, points).round().astype(int))
        seconds = [timed(lambda n=n: self.forward(int(n)), repeat=2) for n in lengths]
        return float(np.trapezoid(seconds, lengths)) if len(lengths) > 1 else seconds[0] * steps


def cache_bytes(config: ModelConfig, positions: int, element_size: int) -> int:
    """Bytes of the keys and values that one step at batch 1 reads from the cache."""
    return config.n_layers * 2 * positions * config.d_model * element_size


@torch.inference_mode()
def measure_ar(name: str, model: ARModel, device: str) -> dict:
    decoder = Decoder(model.to(device).eval(), device)
    decoder.step(3)  # warm-up
    # A shared machine's speed drifts: the fastest of 3 rounds of steps, against the
    # highest bandwidth measured around them (the strictest bound).
    bandwidths, steps, floors = [bandwidth(device)], [], []
    for _ in range(ROUNDS):
        step, positions = decoder.step()
        steps.append(step)
        floors.append(decoder.kernel_floor())
        bandwidths.append(bandwidth(device))
    step, floor, bw = min(steps), min(floors), max(bandwidths)
    element_size = model.text_embedding.weight.element_size()
    read = weight_bytes(model) + cache_bytes(model.config, positions, element_size)
    bound = read / bw
    row = {"model": name, "dtype": str(model.text_embedding.weight.dtype).removeprefix("torch."),
           "parameters": sum(p.numel() for p in model.parameters()), "group_size": decoder.g,
           "weight_mb": weight_bytes(model) / 1e6, "read_per_step_mb": read / 1e6, "bandwidth_gb_s": bw / 1e9,
           "step_ms": 1e3 * step, "kernel_floor_ms": 1e3 * floor, "bound_ms": 1e3 * bound, "ratio_to_bound": step / bound,
           "kv": {}}
    print(f"  {name}: step {1e3 * step:.2f} ms, kernel floor {1e3 * floor:.2f} ms, bound {1e3 * bound:.2f} ms "
          f"({read / 1e6:.1f} MB per step at {bw / 1e9:.1f} GB/s)")
    for seconds in (5, 10, 20):
        frames = int(seconds * FRAME_RATE)
        cached, full = decoder.cached(frames), decoder.recompute(frames)
        row["kv"][seconds] = {"cached_s": cached, "recompute_s": full, "speedup": full / cached}
        print(f"  {name}: {seconds} s of speech: cache {cached:.2f} s, recompute {full:.2f} s ({full / cached:.1f}x)")
    frames = int(5 * FRAME_RATE)
    row["batched"] = {b: b * frames / decoder.cached(frames, b) for b in (1, 4, 8)}  # frames per second, all requests
    print(f"  {name}: batched decoding, frames/s at batch 1 / 4 / 8: " + " / ".join(f"{v:.0f}" for v in row["batched"].values()))
    return row


@torch.inference_mode()
def measure_nar_and_codec(valle, device: str) -> dict:
    frames = int(10 * FRAME_RATE)
    gen = torch.Generator().manual_seed(0)
    k, v = valle.nar.config.n_codebooks, valle.nar.config.codebook_size
    phonemes = torch.randint(0, valle.nar.config.n_phonemes, (PHONEMES,), generator=gen).to(device)
    prompt = torch.randint(0, v, (k, int(PROMPT_SECONDS * FRAME_RATE)), generator=gen).to(device)
    lower = torch.randint(0, v, (valle.nar.first_level, frames), generator=gen).to(device)
    nar = timed(lambda: valle.nar.generate(phonemes, prompt, lower), repeat=2)
    wav = torch.randn(1, 10 * valle.codec.sample_rate, device=device) * 0.1
    codes = valle.codec.encode(wav)
    encode = timed(lambda: valle.codec.encode(wav), repeat=2)
    decode = timed(lambda: valle.codec.decode(codes), repeat=2)
    return {"nar_10s_s": nar, "codec_encode_10s_s": encode, "codec_decode_10s_s": decode}


def end_to_end(valle, prompt: str, runs: int = 3) -> dict:
    text = "The birch canoe slid on the smooth planks, and the boat drifted down the quiet river."
    spoken, seconds = 0.0, 0.0
    for seed in range(runs):
        started = time.perf_counter()
        out = valle.synthesize(text, prompt, seed=seed)
        seconds += time.perf_counter() - started
        spoken += out.seconds
    return {"text": text, "audio_s": spoken, "synthesis_s": seconds, "rtf": seconds / spoken}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    rows = result["ar"]
    x = np.arange(len(rows))
    for offset, key, label in ((-0.27, "step_ms", "measured step"), (0, "kernel_floor_ms", "its matrix-vector products alone"),
                               (0.27, "bound_ms", "bandwidth bound")):
        axes[0].bar(x + offset, [r[key] for r in rows], 0.27, label=label)
    axes[0].set(xticks=x, ylabel="ms per AR step (batch 1)", yscale="log", title="AR decode step vs memory-bandwidth bound")
    axes[0].set_xticklabels([r["model"].replace(", ", "\n") for r in rows], fontsize=7)
    for i, r in enumerate(rows):
        seconds = sorted(r["kv"], key=float)
        axes[1].plot(seconds, [r["kv"][s]["cached_s"] for s in seconds], "o-", color=f"C{i}", label=f"{r['model']}: KV cache")
        axes[1].plot(seconds, [r["kv"][s]["recompute_s"] for s in seconds], "s--", color=f"C{i}", label=f"{r['model']}: recompute")
    axes[1].set(xlabel="seconds of speech decoded", ylabel="decode time (s)", yscale="log", title="KV cache vs recomputation")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(result["machine"], fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="paper", help="a bundled model's name or a model folder of AR and NAR stages")
    parser.add_argument("--presets", nargs="*", default=["paper"], help="random-weight presets to time beside it")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=list(DTYPES),
                        help="weight dtypes to time (default: float32 bfloat16)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decode_speed.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/decode_speed.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from valle.infer import VallE
    from valle.infer.bundled import bundled_prompts

    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {args.device}, torch {torch.__version__}"
    print(machine)
    prompt = next(iter(bundled_prompts()))
    result: dict = {"machine": machine, "ar": [], "pipeline": {}}
    for dtype in args.dtypes:
        valle = VallE.from_pretrained(args.model, args.device, dtype)
        ar_models = [(f"bundled ({args.model})", valle.ar)]
        for name in args.presets:
            config = preset(name, n_phonemes=valle.ar.config.n_phonemes, n_codebooks=8, codebook_size=1024)
            ar_models.append((name, ARModel(config).to(getattr(torch, dtype))))
        result["ar"] += [measure_ar(f"{name}, {dtype}", model, args.device) for name, model in ar_models]
        result["pipeline"][dtype] = {**measure_nar_and_codec(valle, args.device), "end_to_end": end_to_end(valle, prompt)}

    print("\n| model | parameters | group | AR step (ms) | kernel floor (ms) | bandwidth (GB/s) | bound (ms) | ratio | "
          "KV speedup 5 / 10 / 20 s | frames/s at batch 1 / 4 / 8 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in result["ar"]:
        speedups = " / ".join(f"{r['kv'][s]['speedup']:.1f}x" for s in (5, 10, 20))
        batched = " / ".join(f"{v:.0f}" for v in r["batched"].values())
        print(f"| {r['model']} | {r['parameters'] / 1e6:.1f} M | {r['group_size']} | {r['step_ms']:.2f} | "
              f"{r['kernel_floor_ms']:.2f} | {r['bandwidth_gb_s']:.1f} | {r['bound_ms']:.2f} | {r['ratio_to_bound']:.2f}x | "
              f"{speedups} | {batched} |")
    for dtype, p in result["pipeline"].items():
        e2e = p["end_to_end"]
        print(f"\nbundled model in {dtype}: NAR for 10 s of speech {p['nar_10s_s']:.2f} s; codec encode / decode of 10 s: "
              f"{p['codec_encode_10s_s']:.3f} / {p['codec_decode_10s_s']:.3f} s; end to end (prompt {prompt!r}): "
              f"{e2e['audio_s']:.1f} s of speech in {e2e['synthesis_s']:.1f} s, RTF {e2e['rtf']:.2f}")
    checks = {f"{r['model']}: AR step <= 1.5x bound": r["ratio_to_bound"] <= 1.5 for r in result["ar"]}
    checks |= {f"{r['model']}: KV cache >= 10x recompute at 10 s": r["kv"][10]["speedup"] >= 10 for r in result["ar"]}
    plot(result, args.plot)
    print(f"\nwrote {args.plot}")
    return report(checks, result, args.out)


if __name__ == "__main__":
    sys.exit(main())
