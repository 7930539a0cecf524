"""Two evaluations of the same utterances, compared pair by pair: is the difference more than chance?

Models and settings are compared on the same test utterances, so that what makes one utterance
hard cancels out. A paired bootstrap resamples the utterances, both evaluations' scores of each
together, and reads the 95 % interval of each difference (second minus first): WER over the
utterances an English judge reads (`is_english`), mean SIM, and the share identified. Sixty
utterances tell WER apart to about five points; an interval that holds zero is no difference shown.
"""

from dataclasses import dataclass

import numpy as np

from valle.asr import word_errors
from valle.errors import ConfigError
from valle.text.normalize import is_english


@dataclass(frozen=True)
class Difference:
    """One metric of the two evaluations, and the 95 % interval of `second - first`."""

    metric: str
    first: float
    second: float
    low: float
    high: float


def compare(first: list[dict], second: list[dict], system: str = "output", rounds: int = 10000,
            seed: int = 0) -> tuple[int, list[Difference]]:
    """The number of utterances both evaluations scored (matched by setting and id), and each metric's difference.

    `first` and `second`: the `utterances` of two eval JSONs (`valle eval`, `benchmarks/zero_shot.py`);
    `system`: whose scores to compare ("output", the model's; or "truth", "resynthesis")."""
    def keyed(records: list[dict]) -> dict[tuple[str, str], dict]:
        return {(r.get("mode", ""), r["id"]): r[system] | {"language": r.get("language", "en-us")} for r in records}

    a, b = keyed(first), keyed(second)
    shared = sorted(a.keys() & b.keys())
    if not shared:
        raise ConfigError("the two evaluations share no utterance; score the same split with the same --n and --seed")
    rng = np.random.default_rng(seed)
    differences = []
    english = [key for key in shared if is_english(a[key]["language"])]
    if english:
        edits_a, words = np.array([word_errors(a[k]["text"], a[k]["hypothesis"]) for k in english], dtype=float).T
        edits_b = np.array([word_errors(b[k]["text"], b[k]["hypothesis"])[0] for k in english], dtype=float)
        picks = rng.integers(0, len(english), (rounds, len(english)))
        resampled = (edits_b[picks].sum(1) - edits_a[picks].sum(1)) / np.maximum(words[picks].sum(1), 1)
        low, high = np.percentile(resampled, [2.5, 97.5])
        differences.append(Difference("WER", float(edits_a.sum() / words.sum()), float(edits_b.sum() / words.sum()),
                                      float(low), float(high)))
    for metric, key in (("SIM", "sim"), ("identification", "identified")):
        if all(key in a[k] and key in b[k] for k in shared):
            x, y = (np.array([float(scores[k][key]) for k in shared]) for scores in (a, b))
            differences.append(Difference(metric, float(x.mean()), float(y.mean()), *paired_interval(y - x, rng, rounds)))
    return len(shared), differences


def paired_interval(differences: np.ndarray, rng: np.random.Generator, rounds: int = 10000) -> tuple[float, float]:
    """The 95 % bootstrap interval of the mean of per-utterance differences, each pair resampled as one."""
    picks = rng.integers(0, len(differences), (rounds, len(differences)))
    low, high = np.percentile(differences[picks].mean(1), [2.5, 97.5])
    return float(low), float(high)


def comparison_table(n: int, differences: list[Difference]) -> str:
    """A markdown table of `compare`'s result: each metric, both values, the difference and its interval."""
    lines = [f"| {n} utterances | first | second | second - first | 95 % interval |", "|---|---:|---:|---:|---|"]
    for d in differences:
        lines.append(f"| {d.metric} | {_shown(d.metric, d.first)} | {_shown(d.metric, d.second)} | "
                     f"{_shown(d.metric, d.second - d.first, '+')} | "
                     f"[{_shown(d.metric, d.low, '+')}, {_shown(d.metric, d.high, '+')}] |")
    return "\n".join(lines)


def _shown(metric: str, value: float, sign: str = "") -> str:
    """A rate in percent with one decimal (WER, identification), a similarity with three."""
    return f"{100 * value:{sign}.1f} %" if metric in ("WER", "identification") else f"{value:{sign}.3f}"
