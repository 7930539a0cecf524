"""`python -m valle.train ...` is `valle train ...`, the form torchrun launches:

    torchrun --nproc_per_node 8 -m valle.train --stage ar --data shards --out runs/ar
"""

import argparse
import sys

from valle.errors import exit_status
from valle.train.command import HELP, add_arguments, run

parser = argparse.ArgumentParser(prog="valle train", description=HELP)
add_arguments(parser)
args = parser.parse_args()
sys.exit(exit_status(lambda: run(args)))
