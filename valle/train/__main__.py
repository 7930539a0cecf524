"""`python -m valle.train ...` is `valle train ...`, the form torchrun launches:

    torchrun --nproc_per_node 8 -m valle.train --stage ar --data shards --out runs/ar
"""

import sys

from valle.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
