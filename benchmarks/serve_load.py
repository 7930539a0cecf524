"""Load on the HTTP server over loopback: latency, errors and memory over a bounded run.

Starts `valle serve` in its own process, warms it up, then sends N synthesis requests
(bundled voices in turn, short sentences) from C concurrent clients. Reports status
counts (503s, the server's "busy, retry later", apart from real errors), latency
percentiles of the successful requests, throughput, and the server's resident memory
before and after. Targets: no 5xx other than 503, memory growth under 10 %.

    python benchmarks/serve_load.py --requests 200 --concurrency 8
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from targets import report

from valle.infer.bundled import bundled_prompts

SENTENCES = ["Please call Stella.", "The sky is clear today.", "Bring the blue box inside.", "We will meet at noon.",
             "Good morning to you all.", "The train leaves at eight."]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_load(url: str, n: int, concurrency: int, voices: list[str]) -> list[dict]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    results = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            while not queue.empty():
                i = queue.get_nowait()
                form = {"text": SENTENCES[i % len(SENTENCES)], "voice_id": voices[i % len(voices)], "seed": str(i)}
                started = time.perf_counter()
                try:
                    response = await http.post("/v1/synthesize", data=form)
                    status = response.status_code
                except httpx.HTTPError as e:
                    status = f"transport error: {type(e).__name__}"
                results.append({"i": i, "status": status, "seconds": time.perf_counter() - started})

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server-concurrency", type=int, default=1, help="syntheses the server runs at once")
    parser.add_argument("--server-queue", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args()

    port, voices = free_port(), list(bundled_prompts())
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen([sys.executable, "-m", "valle.cli", "serve", "--model", args.model, "--port", str(port),
                                   "--data-dir", data, "--concurrency", str(args.server_concurrency), "--queue",
                                   str(args.server_queue)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
        try:
            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.5)
            asyncio.run(run_load(url, 2 * len(voices), 1, voices))  # warm-up: every voice once, twice
            before = rss_mb(server.pid)
            started = time.perf_counter()
            results = asyncio.run(run_load(url, args.requests, args.concurrency, voices))
            wall = time.perf_counter() - started
            after = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(30)

    counts = Counter(str(r["status"]) for r in results)
    ok = np.array([r["seconds"] for r in results if r["status"] == 200])
    server_errors = sum(1 for r in results if not isinstance(r["status"], int) or (r["status"] >= 500 and r["status"] != 503))
    summary = {
        "requests": args.requests, "concurrency": args.concurrency, "server_concurrency": args.server_concurrency,
        "server_queue": args.server_queue, "status_counts": dict(counts), "errors_5xx_excluding_503": server_errors,
        "p50_s": float(np.percentile(ok, 50)) if ok.size else None, "p95_s": float(np.percentile(ok, 95)) if ok.size else None,
        "max_s": float(ok.max()) if ok.size else None, "wall_s": wall, "requests_per_s": len(results) / wall,
        "rss_before_mb": before, "rss_after_mb": after, "rss_growth": after / before - 1,
    }
    print(json.dumps(summary, indent=1))
    checks = {"no 5xx but 503": server_errors == 0, "memory growth < 10 %": summary["rss_growth"] < 0.10,
              "every request answered": len(results) == args.requests}
    return report(checks, {"summary": summary, "results": results}, args.out)


if __name__ == "__main__":
    sys.exit(main())
