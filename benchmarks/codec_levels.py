"""Which codebook levels carry the words? Resynthesis from the first K levels only, scored by ear.

Held-out utterances of the synthetic corpus are encoded, decoded from their first K
levels (the rest left out, as the codec's quantiser dropout trained it to), and scored:
WER by the Whisper judge (every voice) and SIM(resynthesis, original). A stage that
predicts levels 1..K can at best reach that row's figures with perfect predictions, so
the table says how many levels the stage that knows the alignment must predict.

    python benchmarks/codec_levels.py --corpus runs/corpus10h --split test --n 60
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from valle.audio import load_audio
from valle.codec import load_codec
from valle.data.manifest import read_manifest
from valle.eval.asr import load_recognizer, word_error_rate
from valle.eval.speaker import ENCODER_RATE, SpeakerEncoder, cosine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", default="compact")
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=60, help="utterances, spread evenly over the split")
    parser.add_argument("--asr", default="auto", help="the WER judge (see `valle eval --asr`)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/codec_levels.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    codec, judge, speaker = load_codec(args.codec), load_recognizer(args.asr), SpeakerEncoder()
    rows = read_manifest(args.corpus / f"{args.split}.jsonl")
    rows = [rows[round(i * len(rows) / min(args.n, len(rows)))] for i in range(min(args.n, len(rows)))]
    kept = list(range(1, codec.n_codebooks + 1))
    hypotheses: dict[int | str, list[str]] = {k: [] for k in [*kept, "original"]}
    sims: dict[int, list[float]] = {k: [] for k in kept}
    for row in tqdm(rows, desc="resynthesising", unit="utt"):
        original = load_audio(row.audio, codec.sample_rate)
        hypotheses["original"].append(judge.transcribe(original, codec.sample_rate))
        reference = speaker.embed(original, codec.sample_rate)
        with torch.inference_mode():
            codes = codec.encode(torch.from_numpy(original)[None])
            for k in kept:
                resynth = codec.decode(codes[:, :k])[0, :len(original)].numpy()
                hypotheses[k].append(judge.transcribe(resynth, codec.sample_rate))
                sims[k].append(cosine(reference, speaker.embed(resynth, codec.sample_rate)))
    texts = [row.text for row in rows]
    table = [{"levels": k, "wer": word_error_rate(texts, hypotheses[k]), "sim": float(np.mean(sims[k]))} for k in kept]
    truth = word_error_rate(texts, hypotheses["original"])
    print(f"\n| levels kept | {' | '.join(f'1-{k}' if k > 1 else '1' for k in kept)} |")
    print("|---|" + "---:|" * len(kept))
    print("| WER | " + " | ".join(f"{100 * r['wer']:.1f} %" for r in table) + " |")
    print("| SIM(resynth, original) | " + " | ".join(f"{r['sim']:.3f}" for r in table) + " |")
    print(f"\n{len(rows)} {args.split} utterances of {len({r.speaker for r in rows})} held-out speakers; judge {judge.name}; "
          f"WER of the originals {100 * truth:.1f} %; SIM by Resemblyzer at {ENCODER_RATE} Hz")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"codec": args.codec, "split": args.split, "judge": judge.name, "utterances": len(rows),
                                    "wer_original": truth, "levels": table}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
