"""Are the synthetic corpus's speakers distinct people to a speaker encoder?

Builds (or reuses) a synthetic corpus, embeds every utterance with Resemblyzer
(its weights ship inside the package, so this runs offline) and reports:
- mean cosine similarity of utterance pairs of the same speaker and of different speakers;
- nearest-centroid speaker identification: each speaker's centroid is the mean of
  half of its utterances (enrolment), and the other half are classified among all
  speakers' centroids.
Targets: same - cross >= 0.15, identification >= 90 %.

    python benchmarks/corpus_speakers.py --corpus runs/bench_corpus --hours 2
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
from valle.data.synthetic import build_synthetic_corpus
from valle.data.synthetic.corpus import SPLITS


def embed_corpus(corpus: Path) -> dict[str, list[np.ndarray]]:
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder("cpu", verbose=False)
    by_speaker: dict[str, list[np.ndarray]] = defaultdict(list)
    rows = [row for split in SPLITS for row in read_manifest(corpus / f"{split}.jsonl")]
    for row in tqdm(rows, desc="embedding", unit="utt"):
        wav = load_audio(row.audio, sample_rate=16000)
        by_speaker[row.speaker].append(encoder.embed_utterance(preprocess_wav(wav, source_sr=16000)))
    return by_speaker


def speaker_separation(by_speaker: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """Same/cross-speaker cosine and nearest-centroid identification on held-out halves."""
    speakers = sorted(by_speaker)
    embeddings = np.concatenate([np.stack(by_speaker[s]) for s in speakers])
    labels = np.concatenate([[i] * len(by_speaker[s]) for i, s in enumerate(speakers)])
    cos = embeddings @ embeddings.T  # Resemblyzer's embeddings have unit norm
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)

    centroids, held_out, held_labels = [], [], []
    for i, s in enumerate(speakers):
        utterances = np.stack(by_speaker[s])
        half = len(utterances) // 2
        centroid = utterances[:half].mean(0)
        centroids.append(centroid / np.linalg.norm(centroid))
        held_out.append(utterances[half:])
        held_labels += [i] * (len(utterances) - half)
    predicted = (np.concatenate(held_out) @ np.stack(centroids).T).argmax(1)
    return {
        "speakers": len(speakers),
        "utterances": len(labels),
        "same_speaker_cosine": float(cos[same & off_diagonal].mean()),
        "cross_speaker_cosine": float(cos[~same].mean()),
        "identification_accuracy": float((predicted == np.array(held_labels)).mean()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("runs/bench_corpus"))
    parser.add_argument("--hours", type=float, default=2.0, help="size of the corpus to build if it is absent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/corpus_speakers.json"))
    args = parser.parse_args()

    if not (args.corpus / "speakers.json").exists():
        print(build_synthetic_corpus(args.corpus, hours=args.hours, seed=args.seed))
    result = speaker_separation(embed_corpus(args.corpus))
    result["separation"] = result["same_speaker_cosine"] - result["cross_speaker_cosine"]
    passed = result["separation"] >= 0.15 and result["identification_accuracy"] >= 0.90

    print(f"\n| speakers | utterances | same-speaker cos | cross-speaker cos | same - cross (>= 0.15) | identification (>= 90 %) |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {result['speakers']} | {result['utterances']} | {result['same_speaker_cosine']:.3f} | "
          f"{result['cross_speaker_cosine']:.3f} | {result['separation']:.3f} | {100 * result['identification_accuracy']:.1f} % |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**result, "corpus": str(args.corpus), "passed": passed}, indent=2))
    print(f"\n{'PASS' if passed else 'FAIL'}; wrote {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
