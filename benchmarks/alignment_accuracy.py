"""How close are phoneme alignments to the truth? Word start times against those espeak-ng reports.

The AR stage's phoneme pointer learns from alignments (`valle data align`), so their errors
become its errors. espeak-ng places every word itself and says where: this benchmark speaks
`--n` sentences (the first sentence of each text in `--manifest`) in six espeak-ng voices at
random pitch and rate, tokenises them with the codec, aligns them, and compares the start of
each word's first sounding phoneme with the synthesiser's word start (the first word, which
starts at the file's start, is left out). Utterances whose phonemisation splits the text into
another number of words are skipped and counted.

    python benchmarks/alignment_accuracy.py --aligner runs/aligner_frames --n 60
    python benchmarks/alignment_accuracy.py --scored-folder DIR   # alignments already written into DIR
"""

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from valle.data.manifest import Utterance, read_manifest, write_manifest
from valle.data.shards import TokenizedCorpus
from valle.data.synthetic.engines import engine
from valle.data.tokenize import tokenize_manifest
from valle.train.align import align_corpus, word_starts

VOICES = ("en-us+m3", "en+f2", "en-us-nyc+m5", "en-029+f3", "en-gb-scotland+m1", "en-gb-x-rp+f4")
TIMES = "word_starts.json"


def speak_test_set(manifest: Path, n: int, out: Path, seed: int) -> Path:
    """Speak the first sentence of `n` texts of `manifest` into `out`; returns the tokenised folder."""
    rng = random.Random(seed)
    texts = sorted({row.text.split(". ")[0].rstrip(".") + "." for row in read_manifest(manifest)})
    rng.shuffle(texts)
    espeak, rows, starts = engine("espeak"), [], {}
    (out / "wav").mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(tqdm(texts[:n], desc="speaking", unit="utt")):
        samples, words = espeak.speak_timed(text, VOICES[i % len(VOICES)], rng.randint(30, 70), 50, rng.randint(140, 190))
        path = out / "wav" / f"u{i:04d}.wav"
        sf.write(path, samples, espeak.sample_rate)
        rows.append(Utterance(f"v{i % len(VOICES)}_{i:05d}", path, text, f"v{i % len(VOICES)}",
                              duration=len(samples) / espeak.sample_rate))
        starts[rows[-1].id] = words
    write_manifest(rows, out / "test.jsonl")
    (out / TIMES).write_text(json.dumps(starts))
    return tokenize_manifest(out / "test.jsonl", codec="compact", out=out / "tokens", workers=1)


def word_start_errors(folder: Path, truth: dict[str, list[float]]) -> tuple[np.ndarray, int]:
    """Aligned minus true start (s) of every word but the first, and how many utterances were skipped."""
    corpus = TokenizedCorpus(folder)
    errors, skipped = [], 0
    for i in range(len(corpus)):
        u = corpus[i]
        starts = word_starts(u, corpus.vocab) if u.alignment is not None else []
        if len(starts) != len(truth[u.id]):
            skipped += 1
            continue
        errors += [start / corpus.codec.frame_rate - true for start, true in zip(starts[1:], truth[u.id][1:]) if start is not None]
    return np.array(errors), skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aligner", type=Path, action="append", default=[], help="an aligner folder (repeatable)")
    parser.add_argument("--scored-folder", type=Path, help="score the alignments already in this tokenised test folder")
    parser.add_argument("--manifest", type=Path, default=Path("runs/corpus10h/test.jsonl"), help="where the texts come from")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/alignment_accuracy"), help="folder for the test set")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/alignment_accuracy.json"))
    args = parser.parse_args()

    folder = args.scored_folder or speak_test_set(args.manifest, args.n, args.work, args.seed)
    truth = json.loads((folder.parent / TIMES).read_text())
    systems = {str(aligner): aligner for aligner in args.aligner} or {"as written": None}
    results = {}
    print("| alignments | word starts | mean error | median | within 40 ms | within 100 ms | skipped |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, aligner in systems.items():
        if aligner is not None:
            align_corpus(folder, aligner)
        errors, skipped = word_start_errors(folder, truth)
        absolute = np.abs(errors)
        results[name] = {"words": len(errors), "mean_abs_ms": 1000 * absolute.mean(), "median_abs_ms": 1000 * np.median(absolute),
                         "mean_signed_ms": 1000 * errors.mean(), "within_40ms": float(np.mean(absolute <= 0.04)),
                         "within_100ms": float(np.mean(absolute <= 0.1)), "skipped_utterances": skipped}
        r = results[name]
        print(f"| {name} | {r['words']} | {r['mean_abs_ms']:.0f} ms | {r['median_abs_ms']:.0f} ms | {100 * r['within_40ms']:.0f} % "
              f"| {100 * r['within_100ms']:.0f} % | {skipped} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"test_folder": str(folder), "results": results}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
