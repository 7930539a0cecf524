"""Inference speed against what the hardware allows, measured in one run.

- Memory bandwidth of this machine: the best of several copies of a 512 MB tensor
  (read + write bytes over time).
- AR decode step at batch 1 (KV cache, a 3 s prompt and 100 phonemes before it) against
  the bandwidth bound: every step must read every weight once, so no step can take less
  than weight bytes / bandwidth. Target: <= 1.5x the bound.
- KV cache against recomputing the whole sequence at every step, for 5, 10 and 20 s of
  speech. Decoding with the cache is timed whole; recomputation is timed as full forward
  passes at 8 lengths and integrated over the steps (trapezoids), because doing every step
  of the paper-size model would take hours. Target: cache >= 10x faster at 10 s.
- NAR: the 7 levels of 10 s of speech; codec encode and decode of 10 s.
- Batched decoding: frames per second over all requests at batch 1, 4 and 8, which is
  what a server or a batch job gains when single-stream decoding leaves the bound unmet.
- End to end: real-time factor of `valle synthesize` with the bundled model and prompt.

Models: the bundled model's AR (its real size and group size) and the paper-size preset
(random weights: speed does not depend on them). CPU by default; `--device cuda` on a GPU.

    python benchmarks/decode_speed.py --threads 2
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from targets import report

from valle.model import ARModel, preset

PROMPT_SECONDS, PHONEMES, FRAME_RATE = 3.0, 100, 50.0


def timed(fn, repeat: int = 1) -> float:
    """Best wall time of `repeat` calls, seconds (CUDA synchronised)."""
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


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
        self.model, self.device, self.g = model, device, model.config.group_size
        gen = torch.Generator().manual_seed(0)
        self.phonemes = torch.randint(0, model.config.n_phonemes, (PHONEMES,), generator=gen).to(device)
        frames = int(PROMPT_SECONDS * FRAME_RATE) // self.g * self.g
        self.prompt = torch.randint(0, model.config.codebook_size, (frames,), generator=gen).to(device)

    def cached(self, new_frames: int, batch: int = 1) -> float:
        """Seconds to decode `new_frames` frames for each of `batch` requests with the KV cache (prefill included)."""
        no_eos = lambda logits, history: int(logits[: self.model.eos].argmax())  # noqa: E731
        return timed(lambda: self.model.generate_batch([self.phonemes] * batch, [self.prompt] * batch, [new_frames] * batch,
                                                       [no_eos] * batch))

    def forward(self, n_new: int = 0, room: int = 0) -> tuple[torch.Tensor, list, int]:
        """A full forward pass over phonemes, prompt and `n_new` more groups: (hidden, KV cache, groups so far).

        The cache has `room` for that many more positions.
        """
        m, g = self.model, self.g
        tokens = torch.cat([torch.full((g,), m.bos, device=self.device), self.prompt,
                            torch.zeros(n_new * g, dtype=torch.long, device=self.device)])[None]
        x = torch.cat([m.text_positions(m.text_embedding(self.phonemes[None])), m._embed_audio(tokens)], dim=1)
        mask = m.prefix_mask(torch.ones(1, PHONEMES, dtype=torch.bool, device=self.device),
                             torch.ones(1, tokens.shape[1] // g, dtype=torch.bool, device=self.device))
        cache = m.new_cache(1, x.shape[1] + room, x)
        hidden = m._run(x, mask, cache)
        m.head(hidden[0, -1])
        return hidden, cache, tokens.shape[1] // g

    def step(self, steps: int = 30) -> float:
        """Median seconds of one cached decode step (one group of frames) after the prefill."""
        m, g = self.model, self.g
        hidden, cache, n = self.forward(room=steps)
        times = []
        for _ in range(steps):
            group = m.head(hidden[0, -1]).view(g, -1)[:, : m.eos].argmax(-1)[None]
            started = time.perf_counter()
            hidden = m._run(m._embed_audio(group, offset=n), None, cache)
            m.head(hidden[0, -1])
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
            n += 1
        return float(np.median(times))

    def recompute(self, new_frames: int, points: int = 8) -> float:
        """Seconds to decode `new_frames` frames by a full forward pass per step (integrated from `points` lengths)."""
        steps = new_frames // self.g
        lengths = np.unique(np.linspace(1, steps, points).round().astype(int))
        seconds = [timed(lambda n=n: self.forward(int(n))) for n in lengths]
        return float(np.trapezoid(seconds, lengths)) if len(lengths) > 1 else seconds[0] * steps


@torch.inference_mode()
def measure_ar(name: str, model: ARModel, bw: float, device: str) -> dict:
    decoder = Decoder(model.to(device).eval(), device)
    decoder.step(3)  # warm-up
    step = decoder.step()
    bound = weight_bytes(model) / bw
    row = {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "weight_mb": weight_bytes(model) / 1e6,
           "group_size": decoder.g, "step_ms": 1e3 * step, "bound_ms": 1e3 * bound, "ratio_to_bound": step / bound,
           "kv": {}}
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
    first = torch.randint(0, v, (frames,), generator=gen).to(device)
    nar = timed(lambda: valle.nar.generate(phonemes, prompt, first), repeat=2)
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

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    rows = result["ar"]
    x = np.arange(len(rows))
    axes[0].bar(x - 0.2, [r["step_ms"] for r in rows], 0.4, label="measured step")
    axes[0].bar(x + 0.2, [r["bound_ms"] for r in rows], 0.4, label="bandwidth bound")
    axes[0].set(xticks=x, xticklabels=[r["model"] for r in rows], ylabel="ms per AR step (batch 1)", yscale="log",
                title="AR decode step vs memory-bandwidth bound")
    for r in rows:
        seconds = sorted(r["kv"], key=float)
        axes[1].plot(seconds, [r["kv"][s]["cached_s"] for s in seconds], "o-", label=f"{r['model']}: KV cache")
        axes[1].plot(seconds, [r["kv"][s]["recompute_s"] for s in seconds], "s--", label=f"{r['model']}: recompute")
    axes[1].set(xlabel="seconds of speech decoded", ylabel="decode time (s)", yscale="log", title="KV cache vs recomputation")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(result["machine"], fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="the bundled model's name or a model folder")
    parser.add_argument("--presets", nargs="*", default=["paper"], help="random-weight presets to time beside it")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decode_speed.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/decode_speed.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from valle.infer import VallE
    from valle.infer.bundled import bundled_prompts

    valle = VallE.from_pretrained(args.model, args.device)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {args.device}, torch {torch.__version__}"
    bw = bandwidth(args.device)
    print(f"{machine}\nmemory bandwidth (copy): {bw / 1e9:.1f} GB/s")
    ar_models = [(f"bundled ({args.model})", valle.ar)]
    for name in args.presets:
        config = preset(name, n_phonemes=valle.ar.config.n_phonemes, n_codebooks=8, codebook_size=1024)
        ar_models.append((name, ARModel(config)))
    result = {"machine": machine, "bandwidth_gb_s": bw / 1e9, "ar": [measure_ar(n, m, bw, args.device) for n, m in ar_models]}
    result.update(measure_nar_and_codec(valle, args.device))
    prompt = next(iter(bundled_prompts()))
    result["end_to_end"] = end_to_end(valle, prompt)

    print("\n| model | parameters | group | AR step (ms) | bound (ms) | ratio | KV speedup 5 / 10 / 20 s | frames/s at batch 1 / 4 / 8 |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for r in result["ar"]:
        speedups = " / ".join(f"{r['kv'][s]['speedup']:.1f}x" for s in (5, 10, 20))
        batched = " / ".join(f"{v:.0f}" for v in r["batched"].values())
        print(f"| {r['model']} | {r['parameters'] / 1e6:.1f} M | {r['group_size']} | {r['step_ms']:.2f} | {r['bound_ms']:.2f} | "
              f"{r['ratio_to_bound']:.2f}x | {speedups} | {batched} |")
    e2e = result["end_to_end"]
    print(f"\nbundled NAR, 10 s of speech: {result['nar_10s_s']:.2f} s; codec encode / decode of 10 s: "
          f"{result['codec_encode_10s_s']:.3f} / {result['codec_decode_10s_s']:.3f} s")
    print(f"end to end (bundled model, prompt {prompt!r}): {e2e['audio_s']:.1f} s of speech in {e2e['synthesis_s']:.1f} s, "
          f"RTF {e2e['rtf']:.2f}")
    checks = {f"{r['model']}: AR step <= 1.5x bound": r["ratio_to_bound"] <= 1.5 for r in result["ar"]}
    checks |= {f"{r['model']}: KV cache >= 10x recompute at 10 s": r["kv"][10]["speedup"] >= 10 for r in result["ar"]}
    plot(result, args.plot)
    print(f"\nwrote {args.plot}")
    return report(checks, result, args.out)


if __name__ == "__main__":
    sys.exit(main())
