"""One training corpus from several: human recordings and synthetic corpora, split by speaker.

VALL-E learns to clone voices from many speakers; judged only on voices like those it
trained on, it looks better than it is. A mix therefore holds whole human speakers out:
`held_out` of them (half for validation, half for test), chosen round-robin over the
languages so that no language is judged on one voice alone, from the speakers with enough
speech to prompt with and to score (`min_utterances` clips of at least `min_seconds`, the
paper's shortest target) and no more than `max_share` of the human hours (the few large
voices teach the most). Every other human speaker trains. A synthetic corpus (`valle data synth-corpus`) brings
its own speaker-disjoint splits, which are kept, so that its held-out voices stay unheard.

OUT/{train,valid,test}.jsonl are the usual manifests; OUT/mix.json says where every
speaker went and whether it is human, with hours, speakers and utterances per source,
language, kind and split (`table`). The same inputs and seed give the same bytes.
"""

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from valle.config import DictConfig
from valle.data.manifest import Utterance, read_manifest, write_manifest
from valle.errors import ConfigError, CorpusError
from valle.files import atomic_write

SPLITS = ("train", "valid", "test")
SUMMARY_FILE = "mix.json"


@dataclass(frozen=True)
class MixConfig(DictConfig):
    kind = "corpus mix"

    held_out: int = 6  # human speakers kept from training, alternately for valid and test
    min_utterances: int = 8  # a held-out speaker needs this many clips ...
    min_seconds: float = 4.0  # ... of at least this length: prompts and targets of the paper's evaluation
    max_share: float = 0.1  # ... and at most this share of the human hours
    seed: int = 0

    def __post_init__(self) -> None:
        if self.held_out < 2 or self.min_utterances < 2 or self.min_seconds <= 0 or not 0 < self.max_share <= 1:
            raise ConfigError("a corpus mix needs held_out >= 2 (one valid, one test), min_utterances >= 2, "
                              "min_seconds > 0 and max_share in (0, 1]")


@dataclass(frozen=True)
class Source:
    """Rows of one input, by split (a human manifest's are all unsplit: `None`)."""

    name: str
    human: bool
    rows: dict[str | None, list[Utterance]]


def human_source(manifest: str | Path) -> Source:
    """A manifest of human recordings (`valle data prepare`), named after its file."""
    return Source(Path(manifest).stem, True, {None: read_manifest(manifest)})


def synthetic_source(folder: str | Path) -> Source:
    """A synthetic corpus folder with its own train/valid/test manifests."""
    folder = Path(folder)
    missing = [split for split in SPLITS if not (folder / f"{split}.jsonl").is_file()]
    if missing:
        raise CorpusError(f"{folder} lacks {', '.join(f'{s}.jsonl' for s in missing)}: give a folder built by "
                          "`valle data synth-corpus`")
    return Source(folder.name, False, {split: read_manifest(folder / f"{split}.jsonl") for split in SPLITS})


def pick_held_out(rows: list[Utterance], config: MixConfig) -> dict[str, str]:
    """Human speakers to hold out -> "valid" or "test": round-robin over languages, seeded within each."""
    long_enough: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    language: dict[str, str] = {}
    for row in rows:
        language.setdefault(row.speaker, row.language)
        long_enough[row.speaker] += row.duration >= config.min_seconds
        seconds[row.speaker] += row.duration
    total = sum(seconds.values())
    eligible = sorted(s for s, n in long_enough.items()
                      if n >= config.min_utterances and seconds[s] <= config.max_share * total)
    if len(eligible) < config.held_out + 1:  # and at least one human voice left to train on
        raise CorpusError(f"only {len(eligible)} human speakers have {config.min_utterances} clips of "
                          f"{config.min_seconds:g} s or more and at most {config.max_share:.0%} of the human hours; "
                          f"holding out {config.held_out} needs {config.held_out + 1}: add human manifests or lower held_out")
    rng = random.Random(config.seed)
    by_language: dict[str, list[str]] = defaultdict(list)
    for speaker in eligible:
        by_language[language[speaker]].append(speaker)
    queues = [rng.sample(speakers, len(speakers)) for _, speakers in sorted(by_language.items())]
    rng.shuffle(queues)
    chosen: list[str] = []
    while len(chosen) < config.held_out:
        for queue in queues:
            if queue and len(chosen) < config.held_out:
                chosen.append(queue.pop())
    return {speaker: SPLITS[1 + i % 2] for i, speaker in enumerate(chosen)}


def mix_corpora(sources: list[Source], out: str | Path, config: MixConfig = MixConfig()) -> dict:
    """Write OUT/{train,valid,test}.jsonl and OUT/mix.json; returns the summary that mix.json holds."""
    if not any(source.human for source in sources):
        raise ConfigError("a corpus mix needs at least one human manifest: its point is real voices held out")
    out = Path(out)
    owner: dict[str, str] = {}
    for source in sources:
        for speaker in {row.speaker for rows in source.rows.values() for row in rows}:
            if owner.setdefault(speaker, source.name) != source.name:
                raise CorpusError(f"speaker {speaker!r} is in both {owner[speaker]} and {source.name}; speaker names "
                                  "must be unique across the mixed sources")
    human_rows = [row for source in sources if source.human for row in source.rows[None]]
    held_out = pick_held_out(human_rows, config)
    splits: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    placed: list[tuple[Source, str, Utterance]] = []
    for source in sources:
        for given, rows in source.rows.items():
            for row in rows:
                split = given or held_out.get(row.speaker, "train")
                splits[split].append(row)
                placed.append((source, split, row))
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        write_manifest(sorted(rows, key=lambda r: r.id), out / f"{split}.jsonl")
    summary = {"config": config.to_dict(), "sources": [s.name for s in sources], "table": _table(placed),
               "speakers": {split: sorted({r.speaker for r in rows}) for split, rows in splits.items()},
               "human_speakers": sorted({r.speaker for r in human_rows})}
    with atomic_write(out / SUMMARY_FILE) as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
    return summary


def _table(placed: list[tuple[Source, str, Utterance]]) -> list[dict]:
    """Hours, speakers and utterances per (source, language, human or synthetic, split), then per kind and split
    over every source and language ("all")."""
    cells: dict[tuple[str, str, str, str], list[Utterance]] = defaultdict(list)
    for source, split, row in placed:
        kind = "human" if source.human else "synthetic"
        cells[(source.name, row.language, kind, split)].append(row)
        cells[("all", "all", kind, split)].append(row)
    fields = ("source", "language", "kind", "split")
    return [dict(zip(fields, key)) | {"utterances": len(rows), "speakers": len({r.speaker for r in rows}),
                                      "hours": round(sum(r.duration for r in rows) / 3600, 4)}
            for key, rows in sorted(cells.items(), key=lambda item: (item[0][0] == "all", item[0]))]

def format_table(table: list[dict]) -> str:
    """The mix's table in Markdown."""
    lines = ["| source | language | kind | split | hours | speakers | utterances |", "|---|---|---|---|---:|---:|---:|"]
    return "\n".join(lines + [f"| {r['source']} | {r['language']} | {r['kind']} | {r['split']} | {r['hours']:.2f} | "
                              f"{r['speakers']} | {r['utterances']} |" for r in table])
