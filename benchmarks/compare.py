"""Two evaluations of the same utterances compared pair by pair (`valle.eval.compare`): WER, SIM and
identification of each, the difference and its 95 % paired-bootstrap interval. Either JSON may be a
`benchmarks/zero_shot.py --out` or a `valle eval` eval.json, of the same split, `--n` and `--seed`.

    python benchmarks/compare.py benchmarks/results/zero_shot_default.json benchmarks/results/zero_shot_slower.json
"""

import argparse
import json
import sys
from pathlib import Path

from valle.eval.compare import compare, comparison_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="the evaluation compared against (e.g. the bundled model's)")
    parser.add_argument("second", type=Path)
    parser.add_argument("--system", default="output", choices=["output", "truth", "resynthesis"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    first, second = (json.loads(path.read_text())["utterances"] for path in (args.first, args.second))
    print(comparison_table(*compare(first, second, args.system, seed=args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
