"""Are the synthetic corpus's speakers distinct people to a speaker encoder?

Builds (or reuses) a synthetic corpus, or reads a mixed one (`valle data mix`, human
and synthetic speakers), embeds its utterances with Resemblyzer (its weights ship inside
the package, so this runs offline) and reports:
- mean cosine similarity of utterance pairs of the same speaker and of different speakers;
- nearest-centroid speaker identification: each speaker's centroid is the mean of
  half of its utterances (enrolment), and the other half are classified among all
  speakers' centroids; also per engine, since flite's 16 speakers come from 4 people, or
  per kind in a mixed corpus, where each kind is also scored among its own speakers alone.
`--manifests` reads the speakers of manifests instead, such as recorded speakers and their copies
(`valle data perturb`), grouped as copies (named `<speaker>+p<k>`) and recorded: whether each copy
is a person of its own, apart from its speaker and the speaker's other copies, and how near each
copy stays to its source (their centroids' cosine; how often the source is the copy's nearest voice).
Targets: same - cross >= 0.15, identification >= 90 %. Writes JSON and a plot of the
speaker-centroid similarity matrix.

    python benchmarks/corpus_speakers.py --corpus runs/bench_corpus --hours 2
    python benchmarks/corpus_speakers.py --corpus runs/mix1 --per-speaker 20
    python benchmarks/corpus_speakers.py --manifests runs/mix1/train_human.jsonl runs/mix1_perturbed/perturbed.jsonl --per-speaker 10
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from valle.audio import load_audio
from valle.data.manifest import read_manifest
from valle.data.mix import SUMMARY_FILE as MIX_SUMMARY
from valle.data.perturb import COPY_MARK
from valle.data.synthetic import build_synthetic_corpus
from valle.data.synthetic.corpus import SPLITS
from valle.speaker import ENCODER_RATE, SpeakerEncoder, speaker_separation


def embed_corpus(manifests: list[Path], per_speaker: int | None = None) -> dict[str, np.ndarray]:
    """Speaker -> [utterances, dim] d-vectors over the rows of `manifests`: every utterance, or `per_speaker` spread
    evenly over each speaker's (in id order); speakers with fewer than 2 are left out."""
    encoder = SpeakerEncoder()
    by_speaker: dict[str, list[np.ndarray]] = defaultdict(list)
    rows_of: dict[str, list] = defaultdict(list)
    for row in sorted((row for manifest in manifests for row in read_manifest(manifest)), key=lambda r: r.id):
        rows_of[row.speaker].append(row)
    rows = [row for speaker_rows in rows_of.values() if len(speaker_rows) >= 2
            for row in (speaker_rows if per_speaker is None or len(speaker_rows) <= per_speaker else
                        [speaker_rows[round(i * len(speaker_rows) / per_speaker)] for i in range(per_speaker)])]
    for row in tqdm(rows, desc="embedding", unit="utt"):
        by_speaker[row.speaker].append(encoder.embed(load_audio(row.audio, ENCODER_RATE), ENCODER_RATE))
    return {speaker: np.stack(vectors) for speaker, vectors in sorted(by_speaker.items())}


def plot_similarity(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(np.array(result["centroid_similarity"]), vmin=0, vmax=1, cmap="viridis")
    names = result["speaker_names"]
    ticks = list(range(0, len(names), max(1, len(names) // 16)))
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=7)
    ax.set_title(f"Speaker-centroid cosine similarity ({len(names)} speakers)")
    fig.colorbar(image, ax=ax, label="cosine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def copy_kinship(result: dict) -> dict | None:
    """How near each copy of `valle data perturb` (`<speaker>+p<k>`) stays to its recorded source: the mean cosine
    of their centroids, and how often the source is the copy's nearest other voice; None without copies of a source."""
    names = result["speaker_names"]
    index = {name: i for i, name in enumerate(names)}
    sources = {i: index.get(name.partition(COPY_MARK)[0]) for i, name in enumerate(names) if COPY_MARK in name}
    pairs = [(copy, source) for copy, source in sources.items() if source is not None]
    if not pairs:
        return None
    similarity = np.array(result["centroid_similarity"])
    np.fill_diagonal(similarity, -np.inf)
    return {"copies": len(pairs), "source_cosine": float(np.mean([similarity[c, s] for c, s in pairs])),
            "others_cosine": float(np.mean(similarity[np.isfinite(similarity)])),
            "source_nearest": float(np.mean([similarity[c].argmax() == s for c, s in pairs]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("runs/bench_corpus"))
    parser.add_argument("--hours", type=float, default=2.0, help="size of the corpus to build if it is absent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--manifests", type=Path, nargs="+", help="the speakers of these manifests instead of a corpus's")
    parser.add_argument("--per-speaker", type=int, help="utterances embedded per speaker (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    mix = args.corpus / MIX_SUMMARY
    manifests = args.manifests or [args.corpus / f"{split}.jsonl" for split in SPLITS]
    if args.manifests:
        def group_of(speaker: str) -> str:
            return "copy" if COPY_MARK in speaker else "recorded"
    elif mix.exists():  # a mixed corpus: speakers are human or synthetic
        humans = set(json.loads(mix.read_text())["human_speakers"])

        def group_of(speaker: str) -> str:
            return "human" if speaker in humans else "synthetic"
    else:
        if not (args.corpus / "speakers.json").exists():
            print(build_synthetic_corpus(args.corpus, hours=args.hours, seed=args.seed))
        splits = json.loads((args.corpus / "speakers.json").read_text())["splits"]
        group_of = {voice["speaker"]: voice["engine"] for voices in splits.values() for voice in voices}.__getitem__
    embeddings = embed_corpus(manifests, args.per_speaker)
    result = speaker_separation(embeddings)
    by_group: dict[str, list[float]] = defaultdict(list)
    for speaker, accuracy in result["identified"].items():
        by_group[group_of(speaker)].append(accuracy)
    result["identification_by_group"] = {g: float(np.mean(a)) for g, a in sorted(by_group.items())}
    result["separation"] = result["same_speaker_cosine"] - result["cross_speaker_cosine"]
    result["passed"] = result["separation"] >= 0.15 and result["identification_accuracy"] >= 0.90
    result["groups_alone"] = {}
    for group in sorted(by_group):
        alone = speaker_separation({s: e for s, e in embeddings.items() if group_of(s) == group})
        result["groups_alone"][group] = {k: alone[k] for k in ("speakers", "utterances", "same_speaker_cosine",
                                                              "cross_speaker_cosine", "identification_accuracy")}

    result["copy_kinship"] = copy_kinship(result)
    by_group_text = ", ".join(f"{g} {100 * a:.1f} %" for g, a in result["identification_by_group"].items())
    print("\n| speakers | utterances | same-speaker cos | cross-speaker cos | same - cross (>= 0.15) "
          "| identification (>= 90 %) | by group |")
    print("|---|---:|---:|---:|---:|---:|---|")
    rows = [("all", result, by_group_text)] + [(f"{g} alone", a, "") for g, a in result["groups_alone"].items()]
    for name, r, extra in rows:
        print(f"| {name}: {r['speakers']} | {r['utterances']} | {r['same_speaker_cosine']:.3f} | "
              f"{r['cross_speaker_cosine']:.3f} | {r['same_speaker_cosine'] - r['cross_speaker_cosine']:.3f} | "
              f"{100 * r['identification_accuracy']:.1f} % | {extra} |")
    if kin := result["copy_kinship"]:
        print(f"\n{kin['copies']} copies: centroid cosine with their source {kin['source_cosine']:.3f} (between other "
              f"voices {kin['others_cosine']:.3f}); the source is the nearest voice of {100 * kin['source_nearest']:.1f} %")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "corpus_speakers.json").write_text(json.dumps({**result, "corpus": [str(m) for m in manifests]}, indent=1))
    plot_similarity(result, args.out / "corpus_speakers.png")
    print(f"\n{'PASS' if result['passed'] else 'FAIL'}; wrote {args.out / 'corpus_speakers.json'} and {args.out / 'corpus_speakers.png'}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
