"""How faithful and how fast is a codec? Resynthesis of held-out speakers vs the original.

On the test split of the synthetic corpus (speakers the codec never trained on):
- WER of PocketSphinx on the original and on the resynthesis (flite voices only:
  PocketSphinx cannot read espeak-ng's voices); target: resynthesis <= original + 5 points;
- Resemblyzer speaker similarity SIM(resynthesis, original); target >= 0.90;
- log-mel L1 distance and MFCC-based mel-cepstral distortion (MCD, dB);
- codebook use: share of each level's entries used over the split; target >= 50 %;
- speed: encode + decode time per second of audio, batch 1, on this machine's threads;
  target >= 20x real time.
Prints a markdown table, writes JSON and a per-level codebook-use plot.

    python benchmarks/codec_quality.py --codec compact --corpus runs/bench_corpus
"""

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from valle.asr import PocketSphinx, word_error_rate
from valle.audio import load_audio, resample
from valle.codec import load_codec
from valle.codec.spectral import LogMel
from valle.data.manifest import read_manifest
from valle.data.synthetic import build_synthetic_corpus
from valle.speaker import ENCODER_RATE, SpeakerEncoder, cosine

METRIC_RATE = 16000


def spectral_distances(reference: np.ndarray, test: np.ndarray, log_mel: LogMel) -> tuple[float, float]:
    """(log-mel L1, MFCC mel-cepstral distortion in dB over c1..c12) of two aligned 16 kHz signals."""
    n = min(len(reference), len(test))
    a, b = (log_mel(torch.from_numpy(x[:n].copy())[None])[0] for x in (reference, test))
    n_mels = a.shape[0]
    k = torch.arange(n_mels, dtype=torch.float32)
    dct = torch.cos(math.pi / n_mels * (k[None, :] + 0.5) * torch.arange(13, dtype=torch.float32)[:, None]) * math.sqrt(2 / n_mels)
    difference = (dct @ (a - b))[1:13]
    mcd = (10 / math.log(10)) * torch.sqrt(2 * difference.pow(2).sum(0)).mean()
    return float((a - b).abs().mean()), float(mcd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", default="compact")
    parser.add_argument("--corpus", type=Path, default=Path("runs/bench_corpus"))
    parser.add_argument("--hours", type=float, default=2.0, help="size of the corpus to build if it is absent")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    if not (args.corpus / "speakers.json").exists():
        print(build_synthetic_corpus(args.corpus, hours=args.hours, seed=0))
    torch.set_num_threads(args.threads)
    codec = load_codec(args.codec)
    rows = read_manifest(args.corpus / "test.jsonl")
    speaker_encoder, asr = SpeakerEncoder(), PocketSphinx()
    log_mel = LogMel(METRIC_RATE, 1024, 256, 80)

    used = [set() for _ in range(codec.n_codebooks)]
    sims, mel_l1, mcd, seconds, coding_time = [], [], [], 0.0, 0.0
    references, original_hyps, resynth_hyps = [], [], []
    for row in tqdm(rows, desc="resynthesising", unit="utt"):
        original = load_audio(row.audio, codec.sample_rate)
        wav = torch.from_numpy(original)[None]
        started = time.perf_counter()
        with torch.inference_mode():
            codes = codec.encode(wav)
            output = codec.decode(codes)[0, : len(original)].numpy()
        coding_time += time.perf_counter() - started
        seconds += len(original) / codec.sample_rate
        for level, values in enumerate(codes[0]):
            used[level].update(values.tolist())
        original16, output16 = (resample(x, codec.sample_rate, METRIC_RATE) for x in (original, output))
        sims.append(cosine(speaker_encoder.embed(original16, ENCODER_RATE), speaker_encoder.embed(output16, ENCODER_RATE)))
        l1, distortion = spectral_distances(original16, output16, log_mel)
        mel_l1.append(l1)
        mcd.append(distortion)
        if row.speaker.startswith("fl"):
            references.append(row.text)
            original_hyps.append(asr.transcribe(original16, METRIC_RATE))
            resynth_hyps.append(asr.transcribe(output16, METRIC_RATE))

    usage = [len(u) / codec.codebook_size for u in used]
    result = {
        "codec": args.codec, "utterances": len(rows), "audio_seconds": round(seconds, 1), "wer_utterances": len(references),
        "wer_original": word_error_rate(references, original_hyps), "wer_resynth": word_error_rate(references, resynth_hyps),
        "sim": float(np.mean(sims)), "sim_min": float(np.min(sims)), "log_mel_l1": float(np.mean(mel_l1)),
        "mcd_db": float(np.mean(mcd)), "codebook_use": usage, "realtime_factor": seconds / coding_time,
        "threads": args.threads, "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
    }
    result["wer_gap_points"] = 100 * (result["wer_resynth"] - result["wer_original"])
    checks = {
        "WER gap <= 5 points": result["wer_gap_points"] <= 5,
        "SIM >= 0.90": result["sim"] >= 0.90,
        "every level uses >= 50 %": min(usage) >= 0.5,
        ">= 20x real time": result["realtime_factor"] >= 20,
    }
    result["checks"] = checks

    print("\n| codec | WER original | WER resynth | SIM(resynth, original) | log-mel L1 | MCD (dB) | min codebook use | speed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.codec} | {100 * result['wer_original']:.1f} % | {100 * result['wer_resynth']:.1f} % | {result['sim']:.3f} | "
          f"{result['log_mel_l1']:.3f} | {result['mcd_db']:.2f} | {100 * min(usage):.0f} % | {result['realtime_factor']:.0f}x real time |")
    print(f"\n{len(rows)} test utterances ({seconds / 60:.1f} min) of {len({r.speaker for r in rows})} held-out speakers; "
          f"WER on {len(references)} flite utterances; codebook use per level: {', '.join(f'{100 * u:.0f} %' for u in usage)}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"codec_quality_{args.codec}.json").write_text(json.dumps(result, indent=1))
    _plot_usage(usage, args.out / f"codec_quality_{args.codec}.png", args.codec)
    print(f"\nwrote {args.out / f'codec_quality_{args.codec}.json'} and the plot beside it")
    return 0 if all(checks.values()) else 1


def _plot_usage(usage: list[float], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(1, len(usage) + 1), [100 * u for u in usage], color="tab:blue")
    ax.axhline(50, color="tab:red", linestyle="--", label="target 50 %")
    ax.set(xlabel="RVQ level", ylabel="codebook entries used (%)", ylim=(0, 100), title=f"{name}: codebook use on held-out speakers")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
