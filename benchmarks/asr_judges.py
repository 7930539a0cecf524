"""How well each WER judge reads the synthetic corpus's real recordings (its ground truth).

A judge's WER on the ground truth is the floor of every WER it gives a model, so a judge
that cannot read a voice hides what the model does with it. The utterances are those
the zero-shot benchmark scores (4-10 s, spread over the 10 test speakers, flite's and
espeak-ng's voices), each transcribed by every judge; WER per engine family and time
per utterance on this machine.
Target: the default judge reads both voice families better than every other judge measured.

    python benchmarks/asr_judges.py --corpus runs/corpus10h --n 60 --threads 2
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from targets import report

from valle.asr import load_recognizer, word_error_rate
from valle.audio import load_audio
from valle.data.manifest import read_manifest
from valle.eval.protocol import EvalConfig, plan

RATE = 16000
FAMILIES = {"flite": "fl", "espeak": "esp"}  # speaker-name prefix of each engine's voices


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"))
    parser.add_argument("--n", type=int, default=60, help="test utterances (spread over the speakers)")
    parser.add_argument("--judges", nargs="+", default=["pocketsphinx", "whisper"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/asr_judges.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    targets = [item.target for item in plan(read_manifest(args.corpus / "test.jsonl"), EvalConfig(modes=("cross-sentence",), n=args.n))]
    audio = [load_audio(t.audio, RATE) for t in targets]
    rows, utterances = [], [{"id": t.id, "speaker": t.speaker, "text": t.text} for t in targets]
    for name in args.judges:
        judge = load_recognizer(name, threads=args.threads)
        judge.transcribe(audio[0], RATE)  # warm-up: the first call pays for lazy initialisation
        seconds = []
        for utterance, samples in zip(utterances, audio):
            started = time.perf_counter()
            utterance[judge.name] = judge.transcribe(samples, RATE)
            seconds.append(time.perf_counter() - started)
        rows.append({"judge": judge.name, "seconds_per_utterance": float(np.mean(seconds)),
                     "real_time_factor": sum(seconds) / sum(len(a) / RATE for a in audio),
                     **{f"wer_{family}": _wer(utterances, judge.name, prefix) for family, prefix in {"all": "", **FAMILIES}.items()}})
    counts = {family: sum(u["speaker"].startswith(prefix) for u in utterances) for family, prefix in FAMILIES.items()}
    print(f"\n| judge | WER, all ({len(utterances)}) | WER, flite voices ({counts['flite']}) | WER, espeak-ng voices "
          f"({counts['espeak']}) | s per utterance | real-time factor |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['judge']} | {100 * r['wer_all']:.1f} % | {100 * r['wer_flite']:.1f} % | {100 * r['wer_espeak']:.1f} % | "
              f"{r['seconds_per_utterance']:.2f} | {r['real_time_factor']:.3f} |")
    print(f"\n{len(utterances)} ground-truth utterances of {len({u['speaker'] for u in utterances})} test speakers, "
          f"{sum(map(len, audio)) / RATE / len(audio):.1f} s on average; {args.threads} CPU threads")
    default = load_recognizer("auto").name
    best = {family: min(rows, key=lambda r: r[f"wer_{family}"])["judge"] for family in FAMILIES}
    checks = {f"{default} (the default judge) reads {family} voices best": best[family] == default for family in FAMILIES}
    return report(checks, {"judges": rows, "utterances": utterances}, args.out)


def _wer(utterances: list[dict], judge: str, prefix: str) -> float:
    chosen = [u for u in utterances if u["speaker"].startswith(prefix)]
    return word_error_rate([u["text"] for u in chosen], [u[judge] for u in chosen])


if __name__ == "__main__":
    sys.exit(main())
