"""Designs compared after equal training budgets: held-out loss and accuracy of every codebook level.

Each candidate is an AR stage and the NAR stage that goes with it (they may split the
levels differently). Both are scored teacher-forced on the same held-out speakers; every
level's loss is its cross-entropy given all below it in the candidate's order, so the
sum over levels is the negative log-likelihood of a frame (nats), comparable across
candidates; the AR's `alignment` (its most monotonic head's rank correlation between audio
step and attended phoneme) says whether it reads the text at all. Decoded quality (WER, SIM) comes from `zero_shot.py --split valid` on each
candidate exported with `valle export`.

    python benchmarks/design_tournament.py --valid runs/tokens/valid \\
        --candidate paper runs/tournament/paper_ar/model runs/tournament/paper_nar/model \\
        --candidate content4 runs/tournament/content4_ar/model runs/tournament/content4_nar/model
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from valle.train.validate import loss_per_frame, validate_stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidate", nargs=3, action="append", metavar=("NAME", "AR", "NAR"), required=True)
    parser.add_argument("--valid", type=Path, default=Path("runs/tokens/valid"), help="tokenised held-out speakers")
    parser.add_argument("--utterances", type=int, help="score this many, spread over the split (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/design_tournament.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    results = {}
    for name, ar, nar in args.candidate:
        stages = validate_stages([ar, nar], args.valid, args.utterances)
        levels = {key: value for metrics in stages for key, value in metrics.items() if "_level" in key}
        results[name] = {"ar": ar, "nar": nar, **levels, "nats_per_frame": loss_per_frame(stages),
                         "alignment": stages[0]["alignment"], "text_gain": stages[0]["text_gain"]}
    n_levels = max(int(key.removeprefix("loss_level")) for r in results.values() for key in r if key.startswith("loss_level"))
    levels_header = " | ".join(f"level {i}" for i in range(1, n_levels + 1))
    print(f"\n| candidate | {levels_header} | nats per frame | AR alignment | AR text gain |")
    print("|---|" + "---:|" * (n_levels + 3))
    for name, r in results.items():
        cells = [f"{r[f'loss_level{i}']:.2f} / {r[f'accuracy_level{i}']:.2f}" for i in range(1, n_levels + 1)]
        print(f"| {name} | " + " | ".join(cells) + f" | **{r['nats_per_frame']:.2f}** | {r['alignment']:.2f} | {r['text_gain']:.3f} |")
    print("\neach cell: held-out loss (nats) / top-10 accuracy, teacher-forced; text gain: the AR's loss without the "
          "phonemes less with them (nats per frame)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
