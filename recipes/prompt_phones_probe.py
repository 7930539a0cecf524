"""Are a system's words lost where its prompt never says their sounds? Words heard, by phones missing from the prompt.

    python recipes/prompt_phones_probe.py MANIFEST SCORES.json [SCORES.json ...]

A stage that reads the prompt's frames may fetch, for a sound the prompt never makes, the nearest one it does, and
say another word. For every reference word of the English utterances of each `benchmarks/zero_shot.py --out` file,
this counts how many of the word's phonemes the prompt's transcript (its text in MANIFEST, the benchmark's split) lacks
(0, 1, 2 or more), and whether the recogniser heard the word (a word of the hypothesis left to match it, in any order);
per system (and the recordings) and group of voices (`ACCENTED`, the rest), the share heard at each count. Files scored on the same
utterances compare word for word: where one system loses words no matter the count, what it loses is not the
prompt's missing sounds.
"""

import json
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

from valle.data.manifest import read_manifest
from valle.infer.prompt_coverage import phones_of

ACCENTED = ("esp004", "esp007")  # the test split's voices whose own recordings Whisper tiny.en hears least
WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower().replace("-", " "))


@cache
def phones(word: str) -> frozenset[str]:
    return frozenset(phones_of(word))


def heard_by_missing(scores: dict, transcripts: dict[str, str], heard_in: str = "output") -> dict[tuple[str, int], tuple[int, int]]:
    """(group, phones missing, capped at 2) -> (words heard, words) in each utterance's `heard_in` ("output",
    "truth": its recording)."""
    counts: Counter = Counter()
    prompt_phones: dict[str, frozenset[str]] = {}
    for u in scores["utterances"]:
        if not u["language"].startswith("en"):
            continue
        prompt = Path(u["prompt"]).name
        if prompt not in prompt_phones:
            prompt_phones[prompt] = frozenset(phones_of(transcripts[prompt]))
        hypothesis = Counter(words(u[heard_in]["hypothesis"]))
        group = "accented" if u["speaker"] in ACCENTED else "others"
        for word in words(u["text"]):
            key = (group, min(len(phones(word) - prompt_phones[prompt]), 2))
            counts[key + ("words",)] += 1
            if hypothesis[word] > 0:
                hypothesis[word] -= 1
                counts[key + ("heard",)] += 1
    return {(g, m): (counts[(g, m, "heard")], counts[(g, m, "words")]) for g, m, _ in counts}


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    transcripts = {Path(u.audio).name: u.text for u in read_manifest(sys.argv[1])}
    scores = {Path(f).stem: json.loads(Path(f).read_text()) for f in sys.argv[2:]}
    systems = {"recordings": heard_by_missing(next(iter(scores.values())), transcripts, "truth")}
    systems |= {name: heard_by_missing(table, transcripts) for name, table in scores.items()}
    print("| voices | phones of the word the prompt lacks | " + " | ".join(systems) + " |")
    print("|---|---|" + "---:|" * len(systems))
    for group in ("others", "accented"):
        for missing in (0, 1, 2):
            cells = []
            for table in systems.values():
                heard, total = table.get((group, missing), (0, 0))
                cells.append(f"{heard / total:.1%} of {total}" if total else "-")
            print(f"| {group} | {missing if missing < 2 else '2 or more'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
