"""Is the watermark inaudible, and does it survive what happens to audio files?

Takes 2N utterances of the synthetic corpus's test and valid splits (speakers dealt
round-robin), watermarks N of them (written as 16-bit PCM) and keeps N clean. Each
file, marked or clean, then goes through every attack below and is checked with the
default key; the score ranked is -log10(p-value).

- Inaudibility: SNR of the watermark against the signal (mean, min), and DNSMOS
  (speechmos, offline ONNX) of marked minus clean, same utterance: OVRL, SIG, BAK
  (P.835) and P.808.
- Detection per attack: AUC, TPR at FPR <= 1 % and <= 0.1 % (with 200 clean files
  that means no false alarm at all), TPR and FPR at the fixed threshold p < 1e-4;
  a calibration check of the clean files' p-values.

Attacks: resampling to 8 / 22.05 / 44.1 kHz and back, MP3 at 64 kbit/s (CBR) and
Ogg Vorbis at ~64 kbit/s (VBR, quality searched per file), white noise at 20 dB SNR,
gain +6 dB (clipped at full scale) and -6 dB, a random 1 s excerpt, and the file
between two other (unmarked) utterances of the corpus.

    pip install -e ".[eval,mos]"
    python benchmarks/watermark_robustness.py --corpus runs/corpus10h --n 200

Writes benchmarks/results/watermark_robustness.json and docs/watermark_roc.png.
"""

import argparse
import io
import json
import math
import multiprocessing
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from valle import watermark
from valle.audio import load_audio, resample
from valle.data.manifest import read_manifest
from valle.eval.mos import DNSMOS, DNSMOS_KEYS

RATE = 16000
TARGET_KBPS = 64
ATTACKS = ["none", "resample 8 kHz", "resample 22.05 kHz", "resample 44.1 kHz", "mp3 64k", "ogg 64k",
           "noise 20 dB", "gain +6 dB", "gain -6 dB", "crop 1 s", "concat"]

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pcm16(x: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(x, -1, 1) * 32767) / 32767).astype(np.float32)


def _encode(x: np.ndarray, fmt: str, level: float) -> tuple[np.ndarray, float]:
    buffer = io.BytesIO()
    if fmt == "MP3":
        sf.write(buffer, x, RATE, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT", compression_level=level)
    else:
        sf.write(buffer, x, RATE, format="OGG", subtype="VORBIS", compression_level=level)
    kbps = buffer.tell() * 8 / (len(x) / RATE) / 1000
    buffer.seek(0)
    decoded = sf.read(buffer, dtype="float32")[0]
    return decoded[: len(x)], kbps


def mp3(x: np.ndarray) -> tuple[np.ndarray, float]:
    # libsndfile maps compression level l to a constant bitrate of 160 * (1 - l) kbit/s for MPEG-2 (16 kHz)
    return _encode(x, "MP3", 1 - TARGET_KBPS / 160)


def ogg(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Vorbis is VBR: bisect the quality until the file's average bitrate is within 5 % of 64 kbit/s."""
    low, high = 0.0, 0.9
    best = None
    for _ in range(7):
        level = (low + high) / 2
        decoded, kbps = _encode(x, "OGG", level)
        if best is None or abs(kbps - TARGET_KBPS) < abs(best[1] - TARGET_KBPS):
            best = (decoded, kbps)
        if abs(kbps - TARGET_KBPS) < 0.05 * TARGET_KBPS:
            break
        low, high = (level, high) if kbps > TARGET_KBPS else (low, level)
    return best


def attack(name: str, x: np.ndarray, rng: np.random.Generator, others: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    if name == "none":
        return x, {}
    if name.startswith("resample"):
        rate = round(float(name.split()[1]) * 1000)
        return resample(resample(x, RATE, rate), rate, RATE), {}
    if name == "mp3 64k":
        y, kbps = mp3(x)
        return y, {"kbps": kbps}
    if name == "ogg 64k":
        y, kbps = ogg(x)
        return y, {"kbps": kbps}
    if name == "noise 20 dB":
        power = np.mean(x.astype(np.float64) ** 2)
        return (x + rng.standard_normal(len(x)) * math.sqrt(power / 100)).astype(np.float32), {}
    if name == "gain +6 dB":
        return np.clip(x * 10 ** (6 / 20), -1, 1).astype(np.float32), {}
    if name == "gain -6 dB":
        return (x * 10 ** (-6 / 20)).astype(np.float32), {}
    if name == "crop 1 s":
        start = int(rng.integers(0, len(x) - RATE + 1))
        return x[start : start + RATE], {"start": start / RATE}
    if name == "concat":
        return np.concatenate([others[0], x, others[1]]), {"marked_share": len(x) / (len(x) + len(others[0]) + len(others[1]))}
    raise ValueError(name)


_DNSMOS: DNSMOS | None = None  # one per worker process


def dnsmos(x: np.ndarray) -> dict[str, float]:
    global _DNSMOS
    _DNSMOS = _DNSMOS or DNSMOS()
    return _DNSMOS.score(x, RATE)


def run_file(job: dict) -> dict:
    x = load_audio(job["audio"], RATE)
    others = [load_audio(path, RATE) for path in job["others"]]
    result = {"id": job["id"], "speaker": job["speaker"], "marked": job["marked"], "seconds": len(x) / RATE, "attacks": {}}
    if job["marked"]:
        y = watermark.embed(x, RATE)
        mark = (y - x).astype(np.float64)
        result["snr_db"] = float(10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(mark**2)))
        y = pcm16(y)
        if job["dnsmos"]:
            result["dnsmos_clean"], result["dnsmos_marked"] = dnsmos(x), dnsmos(y)
    else:
        y = x
    for i, name in enumerate(ATTACKS):
        rng = np.random.default_rng([job["seed"], i])
        attacked, info = attack(name, y, rng, others)
        found = watermark.detect(attacked, RATE)
        result["attacks"][name] = {"score": found.score, "log10_p": found.log10_p, **info}
    return result


def roc(positives: np.ndarray, negatives: np.ndarray) -> dict:
    """Scores are -log10 p (higher = more surely marked)."""
    order = np.concatenate([positives, negatives])
    ranks = np.empty(len(order))
    ranks[np.argsort(order, kind="mergesort")] = np.arange(1, len(order) + 1)
    for value in np.unique(order):  # average ranks over ties
        tied = order == value
        ranks[tied] = ranks[tied].mean()
    auc = (ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives))

    def tpr_at(fpr: float) -> float:
        allowed = math.floor(fpr * len(negatives))  # false alarms allowed
        threshold = np.sort(negatives)[::-1][allowed] if allowed < len(negatives) else -np.inf
        return float(np.mean(positives > threshold))

    fixed = -math.log10(watermark.P_THRESHOLD)
    thresholds = np.unique(np.concatenate([[np.inf], order, [-np.inf]]))[::-1]
    curve = [(float(np.mean(negatives >= t)), float(np.mean(positives >= t))) for t in thresholds]
    return {"auc": float(auc), "tpr_at_fpr_1pct": tpr_at(0.01), "tpr_at_fpr_0.1pct": tpr_at(0.001),
            "tpr_at_threshold": float(np.mean(positives > fixed)), "fpr_at_threshold": float(np.mean(negatives > fixed)),
            "min_marked_minus_log10_p": float(positives.min()), "max_clean_minus_log10_p": float(negatives.max()),
            "curve": curve}


def calibration(log10_p: np.ndarray) -> dict:
    p = np.sort(10.0**log10_p)
    n = len(p)
    ks = float(np.max(np.maximum(np.arange(1, n + 1) / n - p, p - np.arange(n) / n)))
    return {"n": n, "ks_statistic": ks, "ks_critical_5pct": 1.36 / math.sqrt(n), "mean_p": float(p.mean()),
            **{f"fraction_p_below_{a:g}": float(np.mean(p < a)) for a in (0.5, 0.1, 0.05, 0.01, 0.001)}}


def plot(summary: dict, path: Path) -> None:
    """Left: ROC per attack. Right: share of files at or above each -log10 p threshold (the margin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    colours = plt.cm.tab20(np.linspace(0, 1, len(ATTACKS)))
    floor = 1 / summary["n_clean"] / 2
    for name, colour in zip(ATTACKS, colours):
        fpr, tpr = zip(*summary["roc"][name]["curve"])
        left.step(np.maximum(fpr, floor), tpr, where="post", color=colour,
                  label=f"{name} (AUC {summary['roc'][name]['auc']:.4f})")
    left.set_xscale("log")
    left.set_xlim(floor, 1)
    left.set_ylim(0.0, 1.02)
    left.axvline(0.01, color="grey", lw=0.8, ls="--")
    left.set_xlabel(f"false positive rate (clean files flagged; left edge = 0 of {summary['n_clean']})")
    left.set_ylabel("true positive rate (marked files found)")
    left.set_title(f"ROC per attack ({summary['n_marked']} marked, {summary['n_clean']} clean utterances)")
    left.legend(fontsize=7, loc="lower right")

    thresholds = np.logspace(-2, 3, 400)
    for name, colour in zip(ATTACKS, colours):
        marked = np.array(summary["scores"][name]["marked"])
        right.plot(thresholds, [np.mean(marked >= t) for t in thresholds], color=colour, label=name)
    clean = np.concatenate([summary["scores"][name]["clean"] for name in ATTACKS])
    right.plot(thresholds, [np.mean(clean >= t) for t in thresholds], color="black", ls="--", lw=2,
               label="clean files, all attacks")
    right.axvline(-math.log10(watermark.P_THRESHOLD), color="red", lw=1)
    right.text(-math.log10(watermark.P_THRESHOLD) * 1.08, 0.5, "threshold\np < 1e-4", color="red", fontsize=8)
    right.set_xscale("log")
    right.set_xlabel("threshold on -log10 p-value")
    right.set_ylabel("share of files at or above the threshold")
    right.set_title("Margin: marked files (solid) vs clean files (dashed)")
    right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def select(corpus: Path, n: int, seed: int) -> tuple[list, list]:
    """2n utterances of the test and valid splits, speakers dealt round-robin, shuffled within each speaker."""
    rows = read_manifest(corpus / "test.jsonl") + read_manifest(corpus / "valid.jsonl")
    rng = random.Random(seed)
    by_speaker = defaultdict(list)
    for row in rows:
        by_speaker[row.speaker].append(row)
    for utterances in by_speaker.values():
        rng.shuffle(utterances)
    dealt = []
    while len(dealt) < min(2 * n, len(rows)):
        for speaker in sorted(by_speaker):
            if by_speaker[speaker]:
                dealt.append(by_speaker[speaker].pop())
    if len(dealt) < 2 * n:
        raise SystemExit(f"{corpus} has {len(rows)} test/valid utterances; --n {n} needs {2 * n}")
    return dealt[0 : 2 * n : 2], dealt[1 : 2 * n : 2], rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"), help="a synthetic corpus folder")
    parser.add_argument("--n", type=int, default=200, help="marked files, and as many clean ones (default: 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slowest part)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/watermark_robustness.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/watermark_roc.png"))
    args = parser.parse_args()

    marked, clean, rows = select(args.corpus, args.n, args.seed)
    rng = random.Random(args.seed + 1)
    jobs = [{"id": row.id, "speaker": row.speaker, "audio": str(row.audio), "marked": is_marked,
             "dnsmos": is_marked and not args.no_dnsmos, "seed": args.seed * 100003 + i,
             "others": [str(other.audio) for other in rng.sample([r for r in rows if r.id != row.id], 2)]}
            for i, (row, is_marked) in enumerate([(r, True) for r in marked] + [(r, False) for r in clean])]
    started = time.time()
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = list(tqdm(pool.imap_unordered(run_file, jobs), total=len(jobs), desc="files", unit="file"))
    else:
        results = [run_file(job) for job in tqdm(jobs, desc="files", unit="file")]
    results.sort(key=lambda r: (not r["marked"], r["id"]))
    positives = [r for r in results if r["marked"]]
    negatives = [r for r in results if not r["marked"]]

    snr = np.array([r["snr_db"] for r in positives])
    summary = {"corpus": str(args.corpus), "n_marked": len(positives), "n_clean": len(negatives),
               "speakers": len({r["speaker"] for r in results}), "key": "default", "threshold_p": watermark.P_THRESHOLD,
               "seconds": time.time() - started, "snr_db": {"mean": float(snr.mean()), "min": float(snr.min())},
               "design": {"rate": watermark.RATE, "period": watermark.PERIOD, "band_hz": watermark.BAND,
                          "margin_db": watermark.MARGIN_DB, "flatten": watermark.FLATTEN, "frame": watermark.FRAME,
                          "hop": watermark.HOP}}
    if not args.no_dnsmos:
        summary["dnsmos"] = {}
        for key in DNSMOS_KEYS:
            clean_scores = np.array([r["dnsmos_clean"][key] for r in positives])
            delta = np.array([r["dnsmos_marked"][key] for r in positives]) - clean_scores
            summary["dnsmos"][key] = {"clean_mean": float(clean_scores.mean()), "marked_mean": float(clean_scores.mean() + delta.mean()),
                                      "delta_mean": float(delta.mean()), "delta_mean_abs": float(np.abs(delta).mean()),
                                      "delta_sem": float(delta.std(ddof=1) / math.sqrt(len(delta)))}
    summary["roc"], summary["scores"] = {}, {}
    for name in ATTACKS:
        pos = -np.array([r["attacks"][name]["log10_p"] for r in positives])
        neg = -np.array([r["attacks"][name]["log10_p"] for r in negatives])
        summary["roc"][name] = roc(pos, neg)
        summary["scores"][name] = {"marked": pos.tolist(), "clean": neg.tolist()}
    summary["calibration_clean"] = calibration(np.array([r["attacks"]["none"]["log10_p"] for r in negatives]))
    summary["calibration_clean_all_attacks"] = calibration(
        np.array([r["attacks"][name]["log10_p"] for r in negatives for name in ATTACKS]))
    for codec in ("mp3 64k", "ogg 64k"):
        summary[f"{codec} mean kbps"] = float(np.mean([r["attacks"][codec]["kbps"] for r in results]))
    summary["files"] = results

    print(f"\n{len(positives)} marked + {len(negatives)} clean utterances, {summary['speakers']} speakers, "
          f"{sum(r['seconds'] for r in results) / 3600:.2f} h, {summary['seconds'] / 60:.1f} min")
    print(f"watermark SNR: mean {snr.mean():.1f} dB, min {snr.min():.1f} dB (>= 30)")
    if "dnsmos" in summary:
        for key, d in summary["dnsmos"].items():
            print(f"DNSMOS {key.split('_')[0].upper():4s}: clean {d['clean_mean']:.3f}, marked {d['marked_mean']:.3f}, "
                  f"delta {d['delta_mean']:+.3f} +- {d['delta_sem']:.3f}, mean |delta| {d['delta_mean_abs']:.3f}"
                  + ("  (OVRL: |delta| <= 0.05)" if key == "ovrl_mos" else ""))
    print(f"codecs: MP3 {summary['mp3 64k mean kbps']:.1f} kbit/s, Vorbis {summary['ogg 64k mean kbps']:.1f} kbit/s on average")
    c = summary["calibration_clean"]
    print(f"clean p-values: KS {c['ks_statistic']:.3f} (5 % critical {c['ks_critical_5pct']:.3f}), "
          f"p<0.1: {c['fraction_p_below_0.1']:.3f}, p<0.05: {c['fraction_p_below_0.05']:.3f}, p<0.01: {c['fraction_p_below_0.01']:.3f}")
    print("\n| attack | AUC | TPR @ FPR 1 % | TPR @ FPR 0.1 % | TPR @ p<1e-4 | FPR @ p<1e-4 | weakest marked -log10 p "
          "| strongest clean -log10 p |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ATTACKS:
        r = summary["roc"][name]
        print(f"| {name} | {r['auc']:.4f} | {100 * r['tpr_at_fpr_1pct']:.1f} % | {100 * r['tpr_at_fpr_0.1pct']:.1f} % | "
              f"{100 * r['tpr_at_threshold']:.1f} % | {100 * r['fpr_at_threshold']:.1f} % | "
              f"{r['min_marked_minus_log10_p']:.1f} | {r['max_clean_minus_log10_p']:.2f} |")
    passed = (snr.min() >= 30 and all(r["tpr_at_fpr_1pct"] >= 0.99 for r in summary["roc"].values())
              and ("dnsmos" not in summary or abs(summary["dnsmos"]["ovrl_mos"]["delta_mean"]) <= 0.05))
    summary["passed"] = bool(passed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    plot(summary, args.plot)
    print(f"\n{'PASS' if passed else 'FAIL'}; wrote {args.out} and {args.plot}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
