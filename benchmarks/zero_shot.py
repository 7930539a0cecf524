"""Zero-shot cloning of unseen speakers, scored as in the paper (cross-sentence setting).

For each test utterance of the synthetic corpus's held-out speakers, the prompt is the
whole utterance of the same speaker whose length is nearest 3 s (a cut would leave a
transcript that no longer matches the audio), and the model speaks the test
utterance's text. Reported beside the same numbers for the
ground-truth recording:
- WER (PocketSphinx, flite-voiced speakers only: it cannot read espeak-ng voices);
- SIM(output, prompt) and SIM(ground truth, prompt) with Resemblyzer;
- speaker identification: is the output closest to its own prompt among all test speakers' prompts;
- real-time factor of synthesis on this machine.
Targets: SIM within 0.05 of ground truth, WER within 10 points, identification >= 80 %, RTF <= 0.5.

    python benchmarks/zero_shot.py --model MODEL_DIR --corpus runs/bench_corpus --n 40
"""

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from valle.audio import load_audio, resample
from valle.data.manifest import read_manifest
from valle.data.synthetic import build_synthetic_corpus
from valle.eval.asr import PocketSphinx, word_error_rate
from valle.eval.speaker import ENCODER_RATE, SpeakerEncoder, cosine
from valle.infer import VallE
from valle.model.sampling import SamplingConfig

PROMPT_SECONDS = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, default=Path("runs/bench_corpus"))
    parser.add_argument("--hours", type=float, default=2.0, help="size of the corpus to build if it is absent")
    parser.add_argument("--n", type=int, default=40, help="test utterances to synthesise (spread over the speakers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    if not (args.corpus / "speakers.json").exists():
        print(build_synthetic_corpus(args.corpus, hours=args.hours, seed=0))
    valle = VallE.from_pretrained(args.model)
    rate = valle.codec.sample_rate
    by_speaker = defaultdict(list)
    for row in read_manifest(args.corpus / "test.jsonl"):
        by_speaker[row.speaker].append(row)
    per_speaker = max(1, args.n // len(by_speaker))
    encoder, asr = SpeakerEncoder(), PocketSphinx()
    torch.set_num_threads(args.threads)

    prompts = {s: min(rows, key=lambda r: abs(r.duration - PROMPT_SECONDS)) for s, rows in by_speaker.items()}
    prompt_audio = {s: load_audio(r.audio, rate) for s, r in prompts.items()}
    prompt_vectors = {s: encoder.embed(resample(a, rate, ENCODER_RATE), ENCODER_RATE) for s, a in prompt_audio.items()}
    speakers = sorted(prompt_vectors)
    results, synth_seconds, audio_seconds = [], 0.0, 0.0
    jobs = [(s, row) for s in speakers for row in [r for r in by_speaker[s] if r is not prompts[s]][:per_speaker]]
    for i, (speaker, row) in enumerate(tqdm(jobs, desc="cloning", unit="utt")):
        truth = load_audio(row.audio, rate)
        started = time.perf_counter()
        out = valle.synthesize(row.text, prompt_audio[speaker], prompts[speaker].text, SamplingConfig(), args.seed + i)
        synth_seconds += time.perf_counter() - started
        audio_seconds += out.seconds
        output_vector, truth_vector = (encoder.embed(resample(x, rate, ENCODER_RATE), ENCODER_RATE) for x in (out.samples, truth))
        nearest = max(speakers, key=lambda s: cosine(output_vector, prompt_vectors[s]))
        results.append({
            "id": row.id, "speaker": speaker, "text": row.text, "seconds": out.seconds,
            "sim_output": cosine(output_vector, prompt_vectors[speaker]),
            "sim_truth": cosine(truth_vector, prompt_vectors[speaker]),
            "identified": nearest == speaker,
            **({"hyp_output": asr.transcribe(out.samples, rate), "hyp_truth": asr.transcribe(truth, rate)}
               if speaker.startswith("fl") else {}),
        })

    wer_rows = [r for r in results if "hyp_output" in r]
    summary = {
        "model": str(args.model), "utterances": len(results), "speakers": len(speakers), "wer_utterances": len(wer_rows),
        "wer_output": word_error_rate([r["text"] for r in wer_rows], [r["hyp_output"] for r in wer_rows]) if wer_rows else None,
        "wer_truth": word_error_rate([r["text"] for r in wer_rows], [r["hyp_truth"] for r in wer_rows]) if wer_rows else None,
        "sim_output": float(np.mean([r["sim_output"] for r in results])), "sim_truth": float(np.mean([r["sim_truth"] for r in results])),
        "identification": float(np.mean([r["identified"] for r in results])), "rtf": synth_seconds / max(audio_seconds, 1e-9),
    }
    checks = {
        "SIM within 0.05 of ground truth": summary["sim_truth"] - summary["sim_output"] <= 0.05,
        "WER within 10 points of ground truth": summary["wer_output"] is not None and summary["wer_output"] - summary["wer_truth"] <= 0.10,
        "identification >= 80 %": summary["identification"] >= 0.80,
        "RTF <= 0.5": summary["rtf"] <= 0.5,
    }
    print("\n| system | WER | SIM(·, prompt) | speaker identification | RTF |")
    print("|---|---:|---:|---:|---:|")

    def wer(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    print(f"| ground truth | {wer(summary['wer_truth'])} | {summary['sim_truth']:.3f} | | |")
    print(f"| {args.model.name} | {wer(summary['wer_output'])} | {summary['sim_output']:.3f} | "
          f"{100 * summary['identification']:.1f} % | {summary['rtf']:.2f} |")
    prompt_seconds = [len(a) / rate for a in prompt_audio.values()]
    print(f"\n{len(results)} utterances of {len(speakers)} unseen speakers, prompts of {min(prompt_seconds):.1f}-"
          f"{max(prompt_seconds):.1f} s; WER on {len(wer_rows)} flite utterances")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "zero_shot.json"
    path.write_text(json.dumps({"summary": summary, "checks": checks, "utterances": results}, indent=1))
    print(f"\nwrote {path}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
