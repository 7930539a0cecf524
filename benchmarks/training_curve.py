"""Decoded quality against training time: one point per call, from the latest weights of a model's runs.

Takes the last checkpointed weights (`RUN/latest`) of a frame stage's run, or joins those of an
AR run and a NAR run, clones the
validation speakers in the zero-shot protocol (cross-sentence, 3 s prompts), scores WER
(the default judge), SIM(output, prompt) and speaker identification, and appends a point
to a JSONL log with the runs' steps and hours. Call it now and then while the runs train;
`--plot` draws every point so far.

    python benchmarks/training_curve.py --frames runs/frames --log runs/frames_curve.jsonl --plot docs/default_curve.png
    python benchmarks/training_curve.py --ar runs/content4_ar --nar runs/content4_nar --log runs/content4_curve.jsonl
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from valle.asr import load_recognizer, word_error_rate
from valle.data.manifest import read_manifest
from valle.eval.evaluate import Scorers, evaluate, summarize
from valle.eval.protocol import EvalConfig, plan
from valle.infer import VallE
from valle.speaker import SpeakerEncoder
from valle.train.trainer import CHECKPOINT, LATEST


def progress(run: Path) -> dict:
    """Step and hours of the run's last checkpoint (what `RUN/latest` holds)."""
    state = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=True)
    return {"step": state["step"], "hours": state.get("hours", 0.0)}


def plot(points: list[dict], out: Path, speakers: str = "validation speakers") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [p["runs"][0]["hours"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(hours, [100 * p["wer"] for p in points], marker="o", label="model")
    axes[0].plot(hours, [100 * p["wer_truth"] for p in points], linestyle="--", label="ground truth")
    axes[0].set_ylabel(f"WER (%), {points[-1]['asr']}")
    axes[1].plot(hours, [p["sim"] for p in points], marker="o", label="model")
    axes[1].plot(hours, [p["sim_truth"] for p in points], linestyle="--", label="ground truth")
    axes[1].set_ylabel("SIM(output, prompt)")
    for ax in axes:
        ax.set_xlabel(f"hours of {points[-1]['stages']} training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"zero-shot on {speakers} ({points[-1]['utterances']} utterances)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    runs = parser.add_mutually_exclusive_group(required=True)
    runs.add_argument("--frames", type=Path, help="a frame stage's run folder")
    runs.add_argument("--ar", type=Path, help="the AR run folder (with --nar)")
    parser.add_argument("--nar", type=Path, help="the NAR run folder that goes with --ar")
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"))
    parser.add_argument("--split", default="valid")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--asr", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", type=Path, required=True, help="JSONL file the point is appended to")
    parser.add_argument("--plot", type=Path, help="draw every point of the log here")
    args = parser.parse_args()

    if args.ar is not None and args.nar is None:
        parser.error("--ar needs the --nar run that goes with it")
    torch.set_num_threads(args.threads)
    folders = [args.frames] if args.frames is not None else [args.ar, args.nar]
    point = {"stages": "frame stage" if args.frames is not None else "AR (NAR alongside)",
             "runs": [progress(run) for run in folders]}
    valle = VallE.from_stages(*(run / LATEST for run in folders))
    items = plan(read_manifest(args.corpus / f"{args.split}.jsonl"), EvalConfig(modes=("cross-sentence",), n=args.n))
    scorers = Scorers(load_recognizer(args.asr, threads=args.threads), SpeakerEncoder())
    records = evaluate(valle, items, scorers)
    truth, _, model = summarize(records)
    texts = [r["text"] for r in records]
    point |= {"asr": scorers.asr.name, "utterances": len(records),
              "wer": word_error_rate(texts, [r["output"]["hypothesis"] for r in records]),
              "wer_truth": word_error_rate(texts, [r["truth"]["hypothesis"] for r in records]),
              "sim": model["sim"], "sim_truth": truth["sim"], "identification": model["identification"], "rtf": model["rtf"]}
    with open(args.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(point) + "\n")
    print(json.dumps(point))
    if args.plot:
        plot([json.loads(line) for line in args.log.read_text().splitlines()], args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
