"""Streaming synthesis: time to first audio, total cost against whole synthesis, and the quality of the joins.

Requests of 1-3 sentences (from the synthetic corpus's sentence pool), bundled voices, seeds
fixed, `--threads` CPU threads:
- in process: time from the call to the first chunk (p50, p95), the time to the last chunk
  against `synthesize` of the same request (same seed, so the same AR codes), and the silence
  a player would have to insert where a chunk arrives after the audio before it has played;
- through the HTTP server on loopback (`valle serve` in a process of its own, as deployed,
  `stream=true`): time from sending the request to the first audio bytes after the WAV header;
- joins: each sentence's streamed audio against one decode of the very codes it streamed,
  mean log-mel distance (dB) on frames within 2 of a join against all other frames (a join
  no worse than elsewhere means the windows and cross-fades are seamless); a frame stage
  streams whole sentences, so its whole stream is compared with whole synthesis.
Targets: first audio p50 <= 200 ms and p95 <= 300 ms in process, p50 <= 250 ms over HTTP,
total time within 1.2x of whole synthesis, joins no worse than elsewhere: within 1.2x of
it, or below 0.1 dB, a tenth of the smallest change of level a listener can hear, where
both are so near zero that their ratio means nothing.

    python benchmarks/streaming.py --requests 20 --threads 2
    python benchmarks/streaming.py --requests 16 --joins-only --lookahead 4 --overlap 1
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from targets import report

from valle.codec.spectral import LogMel
from valle.data.synthetic.sentences import load_sentences
from valle.infer import VallE
from valle.infer.bundled import bundled_prompts
from valle.infer.pipeline import SynthesisRequest
from valle.infer.stream import JobStream, StreamConfig
from valle.model.sampling import SamplingConfig


def requests(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (text of 1-3 sentences, bundled voice) pairs."""
    rng = random.Random(seed)
    pool = [s for s in load_sentences() if 30 <= len(s) <= 90]
    voices = sorted(bundled_prompts())
    return [(" ".join(rng.sample(pool, rng.randint(1, 3))), voices[i % len(voices)]) for i in range(n)]


def stalls(arrivals: list[float], seconds: list[float]) -> float:
    """Seconds of silence a player would insert: it starts with the first chunk and plays each as soon as it has
    both arrived and the one before it has ended."""
    stalled, ends = 0.0, arrivals[0]
    for arrived, length in zip(arrivals, seconds):
        stalled += max(0.0, arrived - ends)
        ends = max(ends, arrived) + length
    return stalled


def in_process(valle: VallE, items: list[tuple[str, str]], config: StreamConfig) -> dict:
    first, ratios, stalled = [], [], []
    rate = valle.codec.sample_rate
    for i, (text, voice) in enumerate(items):
        started = time.perf_counter()
        whole = valle.synthesize(text, voice, seed=i)
        whole_seconds = time.perf_counter() - started
        started, arrivals, lengths = time.perf_counter(), [], []
        for chunk in valle.stream(text, voice, seed=i, config=config):
            arrivals.append(time.perf_counter() - started)
            lengths.append(len(chunk) / rate)
        ratios.append(arrivals[-1] / whole_seconds)
        first.append(arrivals[0])
        stalled.append(stalls(arrivals, lengths))
        assert abs(sum(lengths) - whole.seconds) <= 0.5  # the same speech
    return {"first_audio_ms": [1e3 * f for f in first], "total_ratio": ratios, "stalls_ms": [1e3 * s for s in stalled]}


def over_http(model: str, dtype: str, threads: int, items: list[tuple[str, str]]) -> list[float]:
    """Time to the first audio bytes from `valle serve` run as it is deployed: its own process, on loopback."""
    import socket
    import subprocess
    import tempfile

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url, first = f"http://127.0.0.1:{port}", []
    with tempfile.TemporaryDirectory() as data:
        command = [sys.executable, "-m", "valle.cli", "serve", "--model", model, "--dtype", dtype, "--port", str(port),
                   "--data-dir", data]
        server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while True:
                try:
                    httpx.get(f"{url}/health").raise_for_status()
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"`{' '.join(command)}` did not start") from None
                    time.sleep(0.2)
            for i, (text, voice) in enumerate([items[0], *items]):  # the first request warms the server up
                started, header, got = time.perf_counter(), b"", None
                with httpx.stream("POST", f"{url}/v1/synthesize", timeout=120,
                                  data={"text": text, "voice_id": voice, "seed": str(i), "stream": "true"}) as response:
                    for piece in response.iter_bytes():
                        header += piece
                        if got is None and b"data" in header and len(header) > header.index(b"data") + 8:
                            got = time.perf_counter() - started  # audio bytes after the header
                if i:
                    first.append(1e3 * got)
        finally:
            server.terminate()
            server.wait(30)
    return first


DB_PER_NEPER = 10 / np.log(10)  # log-mel is the natural log of power


def joins(valle: VallE, items: list[tuple[str, str]], config: StreamConfig = StreamConfig()) -> dict:
    """Mean log-mel distance (dB) of streamed audio to one decode of the same codes: near joins and elsewhere.

    An AR model streams windows of each sentence, compared with one decode of the sentence's codes; a frame stage
    streams whole sentences, and its stream, joins and pauses included, is compared with whole synthesis.
    """
    rate = valle.codec.sample_rate
    hop = round(rate / valle.codec.frame_rate)
    log_mel = LogMel(rate, 4 * hop, hop, 80)
    near, far = [], []

    def compare(chunks: list[np.ndarray], whole: np.ndarray) -> None:
        streamed = np.concatenate(chunks)
        a, b = (log_mel(torch.from_numpy(x[:len(streamed)].copy())[None])[0] for x in (streamed, whole))
        distance = DB_PER_NEPER * (a - b).abs().mean(0).numpy()
        seams = np.cumsum([len(c) // hop for c in chunks])[:-1]
        mask = np.zeros(len(distance), bool)
        for s in seams:
            mask[max(0, s - 2):s + 3] = True
        near.extend(distance[mask[:len(distance)]].tolist())
        far.extend(distance[~mask[:len(distance)]].tolist())

    for i, (text, voice) in enumerate(items):
        if valle.frames is not None:
            compare(list(valle.stream(text, voice, seed=i, watermark=False)),
                    valle.synthesize(text, voice, seed=i, watermark=False).samples)
            continue
        jobs, _ = valle.plan(SynthesisRequest(text, voice, None, i), SamplingConfig())
        for job in jobs:
            stream = JobStream(valle, job, config)
            chunks = [chunk for chunk, _ in stream.chunks()]
            with torch.inference_mode():
                compare(chunks, valle.codec.decode(stream.settled[None])[0].float().numpy())
    near_db, far_db = float(np.mean(near)), float(np.mean(far))
    return {"near_joins_db": near_db, "elsewhere_db": far_db, "ratio": near_db / max(far_db, 1e-9), "join_frames": len(near)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto", help="of the AR and NAR weights, as for `valle synthesize --dtype`")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-frames", type=int, default=StreamConfig.first_frames, help="of the first chunk")
    parser.add_argument("--max-frames", type=int, default=StreamConfig.max_frames, help="the longest chunk (in process and joins)")
    parser.add_argument("--lookahead", type=int, default=StreamConfig.lookahead, help="frames (in process and joins)")
    parser.add_argument("--overlap", type=int, default=StreamConfig.overlap, help="frames (in process and joins)")
    parser.add_argument("--joins-only", action="store_true", help="measure only the joins (no timing)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/streaming.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    valle = VallE.from_pretrained(args.model, dtype=args.dtype)
    dtype = str(next(valle.lead.parameters()).dtype).removeprefix("torch.")
    items = requests(args.requests, args.seed)
    config = StreamConfig(first_frames=args.first_frames, max_frames=args.max_frames, lookahead=args.lookahead,
                          overlap=args.overlap)
    seams = joins(valle, items[: max(3, args.requests // 4)], config)
    if args.joins_only:
        print(f"joins: {seams['near_joins_db']:.4f} dB within 2 frames of a join, {seams['elsewhere_db']:.4f} dB elsewhere "
              f"(look-ahead {args.lookahead}, overlap {args.overlap})")
        return 0
    valle.synthesize("Warm up.", items[0][1], seed=0)
    local = in_process(valle, items, config)
    http = over_http(args.model, args.dtype, args.threads, items)
    p = {name: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))}
         for name, v in (("in_process", local["first_audio_ms"]), ("http", http))}
    ratio = float(np.median(local["total_ratio"]))
    stalled = local["stalls_ms"]
    print("\n| where | first audio p50 | first audio p95 | total vs whole synthesis (median) | requests that stall (total) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| in process | {p['in_process']['p50']:.0f} ms | {p['in_process']['p95']:.0f} ms | {ratio:.2f}x | "
          f"{sum(s > 0 for s in stalled)} of {len(stalled)} ({sum(stalled):.0f} ms) |")
    print(f"| HTTP, loopback | {p['http']['p50']:.0f} ms | {p['http']['p95']:.0f} ms | | |")
    print(f"\njoins: log-mel distance {seams['near_joins_db']:.4f} dB within 2 frames of a join, {seams['elsewhere_db']:.4f} dB "
          f"elsewhere ({seams['join_frames']} frames); {args.requests} requests of 1-3 sentences, "
          f"model {args.model} ({dtype} weights), {torch.get_num_threads()} threads")
    checks = {"first audio p50 <= 200 ms in process": p["in_process"]["p50"] <= 200,
              "first audio p95 <= 300 ms in process": p["in_process"]["p95"] <= 300,
              "first audio p50 <= 250 ms over HTTP": p["http"]["p50"] <= 250,
              "total within 1.2x of whole synthesis": ratio <= 1.2,
              "joins no worse than elsewhere (<= 1.2x, or < 0.1 dB)": seams["ratio"] <= 1.2 or seams["near_joins_db"] < 0.1}
    return report(checks, {"model": args.model, "dtype": dtype, "requests": args.requests, "first_audio_ms": p, "total_ratio": ratio,
                           "total_ratios": local["total_ratio"], "stalls_ms": stalled, "joins": seams}, args.out)


if __name__ == "__main__":
    sys.exit(main())
