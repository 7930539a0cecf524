"""Write the training config's `accents` file: each espeak-ng speaker of the English corpora, by its variety.

    python recipes/accent_map.py OUT.json SPEAKERS.json[:PREFIX]...

Each SPEAKERS.json is a synthetic corpus's `speakers.json` (`valle data synth-corpus`); PREFIX is what its speakers'
names carry in the token folders (runs/corpus_s1's are "s1"). An espeak-ng voice's variety is the part of its base
before "+" ("en-029+zac": en-029); flite's voices are one recorded person each, their accent and timbre one, so they
are left out, as is every speaker of another corpus.
"""

import json
import sys
from collections import Counter
from pathlib import Path


def accents(sources: list[str]) -> dict[str, str]:
    named = {}
    for source in sources:
        path, _, prefix = source.partition(":")
        for voices in json.loads(Path(path).read_text())["splits"].values():
            named |= {prefix + v["speaker"]: v["base"].split("+")[0] for v in voices if v["engine"] == "espeak"}
    return named


if __name__ == "__main__":
    out, *sources = sys.argv[1:]
    named = accents(sources)
    Path(out).write_text(json.dumps(named, indent=0, sort_keys=True))
    print(f"{len(named)} speakers: " + ", ".join(f"{a} {n}" for a, n in sorted(Counter(named.values()).items())))
