"""The zero-shot benchmark's `main`, for the probes that patch the pipeline and then score it.

`benchmarks/` is a folder of scripts, not a package: the benchmark is run from its file, with its folder
on the path for the modules it imports beside it.
"""

import runpy
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def zero_shot(args: list[str]) -> int:
    """`python benchmarks/zero_shot.py ARGS` in this process, so that what a probe patched is what it scores."""
    sys.path.insert(0, str(BENCHMARKS))
    return runpy.run_path(str(BENCHMARKS / "zero_shot.py"))["main"](args)
