"""Zero-shot cloning of unseen speakers, scored as in the paper (cross-sentence setting).

The synthetic corpus's held-out test speakers, through `valle eval`'s protocol: each
test utterance of 4-10 s is spoken from a prompt that is another recording of the same
speaker (the whole one nearest 3 s, so that its transcript matches), and scored beside
the speaker's real recording of the same text:
- WER (PocketSphinx) on the flite-voiced speakers only: it cannot read espeak-ng's voices;
- SIM(output, prompt) and SIM(ground truth, prompt) with Resemblyzer;
- speaker identification: is the output nearest its own speaker's prompt among all test speakers';
- real-time factor of synthesis on this machine (watermarking included).
Targets: SIM within 0.05 of ground truth, WER within 10 points, identification >= 80 %, RTF <= 0.5.

    python benchmarks/zero_shot.py --corpus runs/corpus10h --n 60
"""

import argparse
import sys
from pathlib import Path

import torch
from targets import report

from valle.data.manifest import read_manifest
from valle.data.synthetic import build_synthetic_corpus
from valle.eval.asr import PocketSphinx, word_error_rate
from valle.eval.evaluate import Scorers, evaluate, summarize
from valle.eval.protocol import EvalConfig, plan
from valle.eval.speaker import SpeakerEncoder
from valle.infer import VallE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="the bundled model's name or a model folder")
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"))
    parser.add_argument("--hours", type=float, default=10.0, help="size of the corpus to build (seed 0) if it is absent")
    parser.add_argument("--n", type=int, default=60, help="test utterances to synthesise (spread over the speakers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zero_shot.json"))
    args = parser.parse_args()

    if not (args.corpus / "speakers.json").exists():
        print(build_synthetic_corpus(args.corpus, hours=args.hours, seed=0))
    torch.set_num_threads(args.threads)
    valle = VallE.from_pretrained(args.model)
    items = plan(read_manifest(args.corpus / "test.jsonl"), EvalConfig(modes=("cross-sentence",), n=args.n, seed=args.seed))
    scorers = Scorers(PocketSphinx(), SpeakerEncoder())
    records = evaluate(valle, items, scorers, seed=args.seed)
    truth, model = summarize(records)
    flite = [r for r in records if r["speaker"].startswith("fl")]
    wer = {system: word_error_rate([r["text"] for r in flite], [r[system]["hypothesis"] for r in flite]) if flite else None
           for system in ("output", "truth")}
    summary = {"model": str(args.model), "utterances": len(records), "speakers": len({r["speaker"] for r in records}),
               "wer_utterances": len(flite), "wer_output": wer["output"], "wer_truth": wer["truth"],
               "sim_output": model["sim"], "sim_truth": truth["sim"], "identification": model["identification"],
               "identification_truth": truth["identification"], "rtf": model["rtf"],
               "prompt_seconds": [min(r["prompt_seconds"] for r in records), max(r["prompt_seconds"] for r in records)]}
    checks = {
        "SIM within 0.05 of ground truth": summary["sim_truth"] - summary["sim_output"] <= 0.05,
        "WER within 10 points of ground truth": wer["output"] is not None and wer["output"] - wer["truth"] <= 0.10,
        "identification >= 80 %": summary["identification"] >= 0.80,
        "RTF <= 0.5": summary["rtf"] <= 0.5,
    }
    print("\n| system | WER (flite voices) | SIM(·, prompt) | speaker identification | RTF |")
    print("|---|---:|---:|---:|---:|")

    def percent(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    print(f"| ground truth | {percent(wer['truth'])} | {truth['sim']:.3f} | {percent(truth['identification'])} | |")
    print(f"| {args.model} | {percent(wer['output'])} | {model['sim']:.3f} | {percent(model['identification'])} | {model['rtf']:.2f} |")
    low, high = summary["prompt_seconds"]
    print(f"\n{len(records)} utterances of {summary['speakers']} unseen speakers, prompts of {low:.1f}-{high:.1f} s; "
          f"WER on {len(flite)} flite utterances; {torch.get_num_threads()} CPU threads")
    return report(checks, {"summary": summary, "utterances": records}, args.out)


if __name__ == "__main__":
    sys.exit(main())
