"""The evaluation report: a markdown table, the JSON of every utterance, and a figure."""

import json
from pathlib import Path

import numpy as np

from valle.files import atomic_write


def markdown_table(rows: list[dict]) -> str:
    def cell(value: float | None, percent: bool = False, digits: int = 3) -> str:
        if value is None:
            return "n/a"
        return f"{100 * value:.1f} %" if percent else f"{value:.{digits}f}"

    lines = ["| setting | system | n | WER | words heard | SIM(·, prompt) | speaker identification "
             "| pitch off the prompt's (semitones) | DNSMOS OVRL | RTF |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['system']} | {r['n']} | {cell(r['wer'], True)} | {cell(r['heard'], True)} | "
                     f"{cell(r['sim'])} | {cell(r['identification'], True)} | {cell(r['pitch_off'], digits=1)} | "
                     f"{cell(r['dnsmos'], digits=2)} | {cell(r['rtf'], digits=2)} |")
    return "\n".join(lines)


def speaker_table(rows: list[dict], judged: set[str] | None = None) -> str:
    """`valle.eval.evaluate.by_speaker`'s rows as markdown; WER only for the languages in `judged` (None: all)."""
    def wer(row: dict, system: str) -> str:
        return f"{100 * row[f'wer_{system}']:.0f} %" if judged is None or row["language"] in judged else "n/a"

    lines = ["| voice | language | n | WER: ground truth | codec resynthesis | model "
             "| SIM: ground truth | codec resynthesis | model |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['speaker']} | {r['language']} | {r['n']} | {wer(r, 'truth')} | {wer(r, 'resynthesis')} | "
                     f"{wer(r, 'output')} | {r['sim_truth']:.3f} | {r['sim_resynthesis']:.3f} | {r['sim_output']:.3f} |")
    return "\n".join(lines)


def scored_by(info: dict) -> str:
    """Which judges gave the scores: a WER or SIM means little without them."""
    return f"WER by {info['asr']}, SIM by {info['speaker']}"


def write_report(out: Path, rows: list[dict], speakers: list[dict], records: list[dict], info: dict) -> dict[str, Path]:
    """`eval.md` (the table of `rows`, then the voices'), `eval.json` and `eval.png` in `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "eval.md", "json": out / "eval.json", "figure": out / "eval.png"}
    with atomic_write(paths["table"]) as f:
        f.write(f"{markdown_table(rows)}\n\n{scored_by(info)}\n\nPer voice, every setting together:\n\n"
                f"{speaker_table(speakers)}\n")
    with atomic_write(paths["json"]) as f:
        json.dump({"info": info, "summary": rows, "speakers": speakers, "utterances": records}, f, indent=1)
    plot_scores(records, paths["figure"])
    return paths


NO_PITCH_DRAWN_AT = 47.0  # Hz: below the trackers' range, where an output with no pitch found is drawn


def plot_scores(records: list[dict], path: Path) -> Path:
    """Per utterance: SIM of the output against SIM of the real recording; distributions of SIM and DNSMOS; and the
    output's median F0 against the prompt's, where an octave off stands out at once."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r["mode"] for r in records))
    has_mos = "dnsmos" in records[0]["output"]
    pitched = [r for r in records if r.get("prompt_f0")]  # and an output pitch, or none found (drawn at the bottom)
    panels = ["sim", "histogram"] + ["mos"] * has_mos + ["pitch"] * bool(pitched)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8))
    ax = dict(zip(panels, axes))
    for mode, color in zip(modes, ("tab:blue", "tab:orange")):
        rows = [r for r in records if r["mode"] == mode]
        truth, output = [r["truth"]["sim"] for r in rows], [r["output"]["sim"] for r in rows]
        ax["sim"].scatter(truth, output, s=14, alpha=0.7, color=color, label=mode)
        ax["histogram"].hist(output, bins=20, alpha=0.5, color=color, label=f"{mode}: model")
        ax["histogram"].hist(truth, bins=20, histtype="step", color=color, label=f"{mode}: ground truth")
        if has_mos:
            ax["mos"].hist([r["output"]["dnsmos"] for r in rows], bins=20, alpha=0.5, color=color, label=f"{mode}: model")
            ax["mos"].hist([r["truth"]["dnsmos"] for r in rows], bins=20, histtype="step", color=color, label=f"{mode}: ground truth")
        if pitched:
            found = [r for r in pitched if r["mode"] == mode and r["output"].get("f0")]
            ax["pitch"].scatter([r["prompt_f0"] for r in found], [r["output"]["f0"] for r in found], s=14, alpha=0.7,
                                color=color, label=mode)
            none = [r["prompt_f0"] for r in pitched if r["mode"] == mode and not r["output"].get("f0")]
            ax["pitch"].scatter(none, [NO_PITCH_DRAWN_AT] * len(none), s=18, marker="x", color=color,
                                label=f"{mode}: no pitch found")
    low = min(0.0, *(min(r["truth"]["sim"], r["output"]["sim"]) for r in records))
    ax["sim"].plot([low, 1], [low, 1], color="grey", lw=0.8, ls="--")
    ax["sim"].set(xlabel="SIM(ground truth, prompt)", ylabel="SIM(model output, prompt)", title="speaker similarity per utterance")
    ax["histogram"].set(xlabel="SIM(·, prompt)", ylabel="utterances", title="speaker similarity")
    if has_mos:
        ax["mos"].set(xlabel="DNSMOS OVRL", ylabel="utterances", title="naturalness estimate")
    if pitched:
        span = np.array([45.0, 500.0])
        for factor, style in ((1, "--"), (0.5, ":"), (2, ":")):
            ax["pitch"].plot(span, span * factor, color="grey", lw=0.8, ls=style)
        ticks = [50, 100, 200, 400]
        ax["pitch"].set(xscale="log", yscale="log", xlim=span, ylim=span, xticks=ticks, yticks=ticks, xticklabels=ticks,
                        yticklabels=ticks, xlabel="prompt's median F0 (Hz)", ylabel="output's median F0 (Hz)",
                        title="pitch (dotted: an octave off)")
        ax["pitch"].minorticks_off()
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
