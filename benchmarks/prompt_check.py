"""Does `valle prompt check` find what is wrong with a prompt, and only that?

Prompts are made from the synthetic corpus's held-out speakers (`--split valid` to tune
the thresholds, `test`, the default, for the figures): whole utterances of 3-10 s, then
one defect each, at several levels:

- noise: white noise, and babble (six utterances of other speakers), at 20 / 10 / 5 dB
  below the speech's active level;
- music: a melody over a held chord (harmonic notes), at -20 / -10 / 0 dB against the speech;
- several speakers: a second speaker's utterance mixed in at -10 / -5 / 0 dB, or
  following the first (1 s of it, or half the prompt each);
- clipped: driven 1.5x / 3x / 10x past full scale;
- reverberated: exponentially decaying noise impulse responses, RT60 0.3 / 0.6 / 1.0 s,
  direct-to-reverberant ratio -3..3 dB;
- too short: 2 s / 1 s of speech, alone or padded with silence to 5 s;
- too quiet: speech at -45 / -55 dBFS;
- low coverage: the speaker saying a phrase / two words / one word over and over
  (rendered in the speaker's corpus voice).

Clean prompts come as recorded, with 1 s of near-silence on both sides, in a quiet
room (noise at 40 dB, RT60 0.15 s), and as their first 3 s (the length VALL-E prompts
with; no transcript); any finding on them is a false alarm. Every prompt
is written as 16-bit PCM would hold it. Recall is the share of defective prompts whose
report has the defect's code. Targets: recall >= 90 % at each defect's harshest level,
false alarms <= 10 % on each kind of clean prompt.

    python benchmarks/prompt_check.py --n 100                  # test speakers: the figures
    python benchmarks/prompt_check.py --split valid --n 60 --tune  # validation speakers: thresholds
    python benchmarks/prompt_check.py --defects "second voice mixed"  # only that defect and the clean prompts

With `--tune`, each `CheckConfig` threshold is placed from the measures themselves:
halfway between the clean prompts' edge (their 2.5 % quantile toward the defect) and
the 90 % quantile toward clean of the defect's harshest level, so that a clean prompt
seldom crosses it and nine harshest cases in ten do; but no further from the clean
prompts than the 90 % quantile of the defect's mildest level that lies clear of them
(beyond the edge by the clean prompts' own spread, edge to median), so that a measure
whose clean values sit at zero (clipping, tones) is not placed far out. Where
the harshest level overlaps the clean prompts, at the edge: false alarms come first.
With several defects for one finding, the threshold that catches them all is taken;
with several measures for one (`several_speakers`: `voice_contrast` for a second voice
after the first, `two_voice_percent` for one mixed in), each is placed on its own
defect (`TUNED_ON`).
The phoneme count is placed at the 1 % quantile of distinct phonemes in 3 s stretches
of the split's transcripts (read speech). `--retune RESULT.json` does this again from
a saved run.

Writes benchmarks/results/prompt_check[_valid].json (every prompt's measures and codes).
"""

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

os.environ.setdefault("OMP_NUM_THREADS", "1")

from valle.audio import load_audio, trim_silence  # noqa: E402
from valle.data.manifest import Utterance, read_manifest  # noqa: E402
from valle.data.synthetic.voices import Voice, render  # noqa: E402
from valle.infer import prompt_signal as signal  # noqa: E402
from valle.infer.prompt_check import CODES, RULES, CheckConfig, check_prompt  # noqa: E402
from valle.infer.prompt_coverage import phones_of  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from targets import report  # noqa: E402

RATE = signal.RATE
# Where a finding rests on several measures, the defects each one's threshold is placed on.
TUNED_ON = {"voice_contrast": ("second voice after",), "two_voice_percent": ("second voice mixed",)}
REPEATED = {"phrase": "Hello, hello, can you hear me? Hello, hello, can you hear me?",
            "two words": "Yes, no, yes, no, yes, no, yes, no, yes, no.",
            "one word": "No, no, no, no, no, no, no, no, no, no."}


@dataclass(frozen=True)
class Source:
    """What a prompt is made from: an utterance, others of different speakers, a seed."""

    main: Utterance
    others: list[Utterance]
    voice: Voice
    rng: np.random.Generator


@dataclass(frozen=True)
class Condition:
    defect: str  # "clean" for the false-alarm conditions
    level: str
    code: str | None  # the finding it should raise; None: none at all
    make: Callable[[Source], tuple[np.ndarray, str | None]]  # samples at RATE, transcript if still true


def pcm16(x: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(x, -1, 1) * 32767) / 32767).astype(np.float32)


def audio(u: Utterance) -> np.ndarray:
    return load_audio(u.audio, RATE)


def active_power(x: np.ndarray) -> float:
    level = signal.band_level_db(signal.power_spectrogram(x))
    return 10 ** (signal.active_level_db(x, signal.speech_mask(level)) / 10)


def at_ratio(x: np.ndarray, extra: np.ndarray, ratio_db: float) -> np.ndarray:
    """`x` plus `extra` (fitted to its length) scaled to `ratio_db` against x's active level."""
    extra = np.resize(extra, len(x)).astype(np.float64)
    gain = math.sqrt(active_power(x) * 10 ** (ratio_db / 10) / max(np.mean(extra**2), 1e-20))
    return below_full_scale(x + gain * extra)


def below_full_scale(x: np.ndarray) -> np.ndarray:
    """Scaled down if a mixture went past full scale: only the clipping condition may clip."""
    return x * min(1.0, 0.98 / max(np.abs(x).max(), 1e-9))


def babble(s: Source, n: int) -> np.ndarray:
    talkers = [trim_silence(audio(u), RATE) for u in s.others[:6]]
    out = np.zeros(n)
    for talker in talkers:
        talker = np.roll(np.resize(talker, n), int(s.rng.integers(n)))
        out += talker / math.sqrt(np.mean(talker.astype(np.float64) ** 2) + 1e-20)
    return out


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Chords held for 2 s (triads of harmonic notes, 200-500 Hz), a bass note every half second
    and a melody of plucked notes of 0.2-0.6 s above them, all on an A minor pentatonic scale."""
    scale = 220 * 2 ** (np.array([0, 3, 5, 7, 10, 12, 15, 17, 19, 22, 24]) / 12)

    def note(f0: float, length: int, decay: float) -> np.ndarray:
        t = np.arange(length) / RATE
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
        return tone * np.minimum(1, t / 0.01) * np.exp(-decay * t)

    out = np.zeros(n)
    for start in range(0, n, 2 * RATE):  # chords
        root = int(rng.integers(4))
        for degree in (0, 2, 4):
            piece = note(scale[root + degree], min(2 * RATE, n - start), 0.3)
            out[start:start + len(piece)] += 0.5 * piece
    for start in range(0, n, RATE // 2):  # bass
        piece = note(scale[int(rng.integers(3))] / 2, min(RATE // 2, n - start), 3.0)
        out[start:start + len(piece)] += 0.7 * piece
    start = 0
    while start < n:  # melody
        length = int(rng.uniform(0.2, 0.6) * RATE)
        piece = note(2 * float(rng.choice(scale[:7])), min(length, n - start), 2.0)
        out[start:start + len(piece)] += piece
        start += length
    return out


def reverberate(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with an exponentially decaying noise tail (RT60) after a direct path; DRR -3..3 dB."""
    n = int(1.2 * rt60 * RATE)
    tail = rng.standard_normal(n) * np.exp(-6.91 * np.arange(n) / RATE / rt60)
    tail[: RATE // 1000] = 0
    tail *= math.sqrt(10 ** (-rng.uniform(-3, 3) / 10) / np.sum(tail**2))
    h = tail
    h[0] = 1.0
    size = 1 << int(math.ceil(math.log2(len(x) + n)))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x) + int(0.3 * RATE)]
    return below_full_scale(y * math.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(y**2)))


def speech_start(x: np.ndarray) -> np.ndarray:
    return trim_silence(x, RATE, keep_ms=20)


def floor_noise(n: int, rng: np.random.Generator, dbfs: float = -80.0) -> np.ndarray:
    return rng.standard_normal(n) * 10 ** (dbfs / 20)


def gain_to(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * math.sqrt(10 ** (dbfs / 10) / active_power(x))


def conditions() -> list[Condition]:
    def clean(s: Source) -> tuple[np.ndarray, str | None]:
        return audio(s.main), s.main.text

    def excerpt(s: Source) -> tuple[np.ndarray, str | None]:
        return speech_start(audio(s.main))[: 3 * RATE], None

    def with_silence(s: Source) -> tuple[np.ndarray, str | None]:
        x = audio(s.main)
        pad = np.zeros(RATE)
        y = np.concatenate([pad, x, pad])
        return y + floor_noise(len(y), s.rng), s.main.text

    def quiet_room(s: Source) -> tuple[np.ndarray, str | None]:
        x = reverberate(audio(s.main), 0.15, s.rng)
        return at_ratio(x, s.rng.standard_normal(len(x)), -40), s.main.text

    def white(snr: float) -> Callable:
        return lambda s: (at_ratio(audio(s.main), s.rng.standard_normal(RATE), -snr), s.main.text)

    def babbled(snr: float) -> Callable:
        return lambda s: (at_ratio(x := audio(s.main), babble(s, len(x)), -snr), s.main.text)

    def with_music(ratio: float) -> Callable:
        return lambda s: (at_ratio(x := audio(s.main), music(len(x), s.rng), ratio), s.main.text)

    def mixed(ratio: float) -> Callable:
        return lambda s: (at_ratio(audio(s.main), trim_silence(audio(s.others[0]), RATE), ratio), s.main.text)

    def alternating(second_seconds: float | None) -> Callable:
        def make(s: Source) -> tuple[np.ndarray, str | None]:
            a, b = trim_silence(audio(s.main), RATE), trim_silence(audio(s.others[0]), RATE)
            b = gain_to(b, 10 * math.log10(active_power(a)))
            if second_seconds is None:  # half each: the first 2.5 s of each
                return np.concatenate([a[: int(2.5 * RATE)], np.zeros(RATE // 4), b[: int(2.5 * RATE)]]), None
            return np.concatenate([a, np.zeros(RATE // 4), b[: int(second_seconds * RATE)]]), None
        return make

    def clipped(drive: float) -> Callable:
        return lambda s: (np.clip((x := audio(s.main)) * drive / np.abs(x).max(), -1, 1), s.main.text)

    def reverb(rt60: float) -> Callable:
        return lambda s: (reverberate(audio(s.main), rt60, s.rng), s.main.text)

    def short(seconds: float, padded: bool) -> Callable:
        def make(s: Source) -> tuple[np.ndarray, str | None]:
            x = speech_start(audio(s.main))[: int(seconds * RATE)]
            if padded:
                x = np.concatenate([np.zeros(RATE), x, np.zeros(5 * RATE - len(x) - RATE)])
            return x + floor_noise(len(x), s.rng), None
        return make

    def quiet(dbfs: float) -> Callable:
        return lambda s: (gain_to(audio(s.main), dbfs), s.main.text)

    def repeated(kind: str) -> Callable:
        return lambda s: (render(s.voice, REPEATED[kind], RATE), REPEATED[kind])

    return [
        Condition("clean", "as recorded", None, clean),
        Condition("clean", "1 s of silence around", None, with_silence),
        Condition("clean", "quiet room", None, quiet_room),
        Condition("clean", "first 3 s", None, excerpt),
        *[Condition("white noise", f"{snr} dB", "noise", white(snr)) for snr in (20, 10, 5)],
        *[Condition("babble", f"{snr} dB", "noise", babbled(snr)) for snr in (20, 10, 5)],
        *[Condition("music", f"{r} dB", "not_speech", with_music(r)) for r in (-20, -10, 0)],
        *[Condition("second voice mixed", f"{r} dB", "several_speakers", mixed(r)) for r in (-10, -5, 0)],
        Condition("second voice after", "1 s", "several_speakers", alternating(1.0)),
        Condition("second voice after", "half each", "several_speakers", alternating(None)),
        *[Condition("clipped", f"{d:g}x", "clipping", clipped(d)) for d in (1.5, 3, 10)],
        *[Condition("reverberated", f"RT60 {t} s", "reverberant", reverb(t)) for t in (0.3, 0.6, 1.0)],
        *[Condition("short", f"{t} s", "too_short", short(t, False)) for t in (2, 1)],
        *[Condition("short, padded to 5 s", f"{t} s", "too_short", short(t, True)) for t in (2, 1)],
        *[Condition("quiet", f"{d} dBFS", "too_quiet", quiet(d)) for d in (-45, -55)],
        *[Condition("low coverage", kind, "low_coverage", repeated(kind)) for kind in REPEATED],
    ]


def sources(corpus: Path, split: str, n: int, seed: int) -> list[tuple[Utterance, list[Utterance], Voice]]:
    """n prompts' utterances (3-10 s, speakers in turn), each with others of other speakers and its voice."""
    rows = read_manifest(corpus / f"{split}.jsonl")
    voices = {v["speaker"]: Voice(**v) for v in json.loads((corpus / "speakers.json").read_text())["splits"][split]}
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[Utterance]] = {}
    for u in rows:
        if 3.0 <= u.duration <= 10.0:
            by_speaker.setdefault(u.speaker, []).append(u)
    speakers = sorted(by_speaker)
    chosen = []
    for i in range(n):
        speaker = speakers[i % len(speakers)]
        main = by_speaker[speaker][int(rng.integers(len(by_speaker[speaker])))]
        others = [rows[j] for j in rng.permutation(len(rows)) if rows[j].speaker != speaker][:6]
        chosen.append((main, others, voices[speaker]))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"), help="a synthetic corpus folder")
    parser.add_argument("--split", default="test", choices=["test", "valid"])
    parser.add_argument("--n", type=int, default=100, help="prompts per condition (default: 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tune", action="store_true", help="print the thresholds these prompts suggest (use --split valid)")
    parser.add_argument("--retune", type=Path, help="only print the thresholds a saved result suggests")
    parser.add_argument("--defects", nargs="+", metavar="DEFECT",
                        help="only these defects (and the clean prompts), e.g. 'second voice mixed': a quicker look")
    args = parser.parse_args()
    if args.retune:
        saved = json.loads(args.retune.read_text())
        print(tune(saved["prompts"], saved["rows"], read_manifest(args.corpus / f"{saved['split']}.jsonl")))
        return 0
    unknown = set(args.defects or ()) - {c.defect for c in conditions()}
    if unknown:
        parser.error(f"no such defect: {', '.join(sorted(unknown))} (the defects are those of the figures' table)")
    out = args.out or Path(f"benchmarks/results/prompt_check{'' if args.split == 'test' else '_' + args.split}.json")

    chosen = sources(args.corpus, args.split, args.n, args.seed)
    started, rows, records = time.perf_counter(), [], []
    for c_index, condition in enumerate(conditions()):
        if args.defects and condition.defect not in ("clean", *args.defects):
            continue
        found = Counter()
        for p_index, (main, others, voice) in enumerate(tqdm(chosen, desc=f"{condition.defect}, {condition.level}", leave=False)):
            x, text = condition.make(Source(main, others, voice, np.random.default_rng([args.seed, c_index, p_index])))
            result = check_prompt(pcm16(np.asarray(x)), RATE, text)
            found.update(result.codes)
            hit = (not result.codes) if condition.code is None else condition.code in result.codes
            records.append({"defect": condition.defect, "level": condition.level, "id": main.id, "hit": hit,
                            "codes": result.codes, "measures": result.measures})
        rate = (sum(not r["codes"] for r in records[-len(chosen):]) if condition.code is None else found[condition.code]) / len(chosen)
        rows.append({"defect": condition.defect, "level": condition.level, "code": condition.code,
                     "recall" if condition.code else "false_alarms": rate if condition.code else 1 - rate,
                     "codes": {code: found[code] / len(chosen) for code in CODES if found[code]}})
        print(table_row(rows[-1]), flush=True)

    print("\n| defect | level | finding | recall | false alarms | other findings |\n|---|---|---|---:|---:|---|")
    for row in rows:
        print(table_row(row))
    harshest = {}
    for row in rows:
        if row["code"]:
            harshest[row["defect"]] = row
    checks = {f"{d} ({r['level']}): recall {100 * r['recall']:.0f} % >= 90 %": r["recall"] >= 0.9 for d, r in harshest.items()}
    checks.update({f"clean ({r['level']}): false alarms {100 * r['false_alarms']:.0f} % <= 10 %": r["false_alarms"] <= 0.1
                   for r in rows if r["code"] is None})
    print(f"\n{len(chosen)} prompts per condition, {args.split} speakers; {time.perf_counter() - started:.0f} s")
    if args.tune:
        print(tune(records, rows, read_manifest(args.corpus / f"{args.split}.jsonl")))
    return report(checks, {"split": args.split, "n": args.n, "seed": args.seed, "rows": rows, "prompts": records}, out)


def tune(records: list[dict], rows: list[dict], transcripts: list[Utterance]) -> str:
    """Thresholds placed between clean prompts and each defect (see the docstring), with the recall they give at
    every level."""
    lines = ["| finding | measure | clean edge | threshold | now | recall by level |", "|---|---|---:|---:|---:|---|"]
    for rule in RULES:
        code, clean = rule.code, measured(records, rule.measure, "clean")
        if not clean:
            continue
        edge = float(np.percentile(clean, 2.5 if rule.below else 97.5))
        margin = abs(edge - float(np.median(clean)))
        placed = []
        for defect in dict.fromkeys(row["defect"] for row in rows if row["code"] == code):
            if defect not in TUNED_ON.get(rule.measure, (defect,)):
                continue
            reaches = [float(np.percentile(level, 90 if rule.below else 10)) if (level := measured(
                records, rule.measure, defect, row["level"])) else edge for row in rows if row["defect"] == defect]
            threshold = (edge + reaches[-1]) / 2 if rule.crossed(reaches[-1], edge) else edge  # the harshest level is last
            mildest = next((r for r in reaches if rule.crossed(r, edge - margin if rule.below else edge + margin)), None)
            if mildest is not None and rule.crossed(threshold, mildest):
                threshold = mildest
            placed.append(threshold)
        if not placed:  # none of the defects it is placed on was run (--defects)
            continue
        threshold = (max if rule.below else min)(placed)
        if code == "low_coverage":
            threshold = coverage_of_3_seconds(transcripts)
        recalls = []
        for row in rows:
            if row["code"] == code:
                level = [r["measures"][rule.measure] for r in records if (r["defect"], r["level"]) == (row["defect"], row["level"])]
                recall = np.mean([rule.crossed(v, threshold) for v in level])
                recalls.append(f"{row['defect']} {row['level']} {100 * recall:.0f} %")
        lines.append(f"| {code} | {rule.measure} | {edge:.4g} | {threshold:.4g} | {getattr(CheckConfig(), rule.limit):g} "
                     f"| {', '.join(recalls)} |")
    return "\n".join(lines)


def measured(records: list[dict], measure: str, defect: str, level: str | None = None) -> list[float]:
    """The values of `measure` on the prompts of a defect (and level), where it could be measured."""
    return [v for r in records if r["defect"] == defect and level in (None, r["level"])
            and (v := r["measures"][measure]) is not None]


def coverage_of_3_seconds(utterances: list[Utterance], seconds: float = 3.0) -> float:
    """The 1 % quantile of distinct phonemes in stretches of `seconds` of read speech (the transcripts, at each
    utterance's own speaking rate)."""
    counts = []
    for u in utterances:
        phones = phones_of(u.text, u.language)
        n = round(seconds * len(phones) / u.duration)
        counts += [len(set(phones[i:i + n])) for i in range(0, max(1, len(phones) - n + 1))]
    return float(np.percentile(counts, 1))


def table_row(row: dict) -> str:
    others = ", ".join(f"{code} {100 * share:.0f} %" for code, share in row["codes"].items() if code != row["code"])
    recall = f"{100 * row['recall']:.0f} %" if row["code"] else ""
    false = "" if row["code"] else f"{100 * row['false_alarms']:.0f} %"
    return f"| {row['defect']} | {row['level']} | {row['code'] or 'none'} | {recall} | {false} | {others} |"


if __name__ == "__main__":
    sys.exit(main())
