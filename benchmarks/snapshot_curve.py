"""Quality against training time from the zero-shot benchmark's scores of a run's snapshots.

`training_curve.py` scores a run's latest weights as it trains; a long run is better read
at a few snapshots of its averaged weights (`cp -r RUN/ema SNAP` once the checkpoint of a
step is written, then `valle export`), each scored by `zero_shot.py` on the test speakers.
This draws those scores, WER and SIM(output, prompt) with the ground truth's beside them,
against the hours of training the run's metrics log gives for each snapshot's step.

    python benchmarks/snapshot_curve.py --metrics runs/frames_contour_codes_scratch/metrics.jsonl \\
        1000=runs/zs_scratch1000_test.json 2300=runs/zs_scratch2300_test.json --plot docs/scratch_curve.png
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from training_curve import plot  # noqa: E402


def hours_at(metrics: Path) -> dict[int, float]:
    """Hours of training at each logged step (the last logging of a step wins: a resumed run logs it again)."""
    hours = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "hours" in row:
            hours[row["step"]] = row["hours"]
    return hours


def point(step: int, hours: dict[int, float], scores: Path) -> dict:
    """One point in `training_curve.py`'s form, from `zero_shot.py`'s summary of the snapshot of `step`."""
    if step not in hours:
        raise SystemExit(f"step {step} is not in the metrics log; give a step the run logged (every 20 by default)")
    s = json.loads(scores.read_text(encoding="utf-8"))["summary"]
    return {"stages": "frame stage", "runs": [{"step": step, "hours": hours[step]}], "asr": s["asr"],
            "utterances": s["utterances"], "wer": s["wer_output"], "wer_truth": s["wer_truth"], "sim": s["sim_output"],
            "sim_truth": s["sim_truth"], "identification": s["identification"], "model": s["model"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", nargs="+", help="STEP=JSON: the step of a snapshot and zero_shot.py's --out for it")
    parser.add_argument("--metrics", type=Path, required=True, help="the run's metrics.jsonl")
    parser.add_argument("--speakers", default="test speakers", help="who the scores are of, for the title")
    parser.add_argument("--plot", type=Path, required=True)
    args = parser.parse_args()

    hours = hours_at(args.metrics)
    points = []
    for item in args.scores:
        step, _, path = item.partition("=")
        if not step.isdigit() or not path:
            parser.error(f"{item!r} is not STEP=JSON")
        points.append(point(int(step), hours, Path(path)))
    points.sort(key=lambda p: p["runs"][0]["step"])
    for p in points:
        print(f"step {p['runs'][0]['step']:>6}  {p['runs'][0]['hours']:5.2f} h  WER {100 * p['wer']:5.1f} %  "
              f"SIM {p['sim']:.3f}  identification {100 * p['identification']:5.1f} %")
    plot(points, args.plot, args.speakers)
    print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
