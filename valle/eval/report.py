"""The evaluation report: a markdown table, the JSON of every utterance, and a figure."""

import json
from pathlib import Path

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


def scored_by(info: dict) -> str:
    """Which judges gave the scores: a WER or SIM means little without them."""
    return f"WER by {info['asr']}, SIM by {info['speaker']}"


def write_report(out: Path, rows: list[dict], records: list[dict], info: dict) -> dict[str, Path]:
    """`eval.md`, `eval.json` and `eval.png` in `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "eval.md", "json": out / "eval.json", "figure": out / "eval.png"}
    with atomic_write(paths["table"]) as f:
        f.write(f"{markdown_table(rows)}\n\n{scored_by(info)}\n")
    with atomic_write(paths["json"]) as f:
        json.dump({"info": info, "summary": rows, "utterances": records}, f, indent=1)
    plot_scores(records, paths["figure"])
    return paths


def plot_scores(records: list[dict], path: Path) -> Path:
    """Per utterance: SIM of the output against SIM of the real recording; distributions of SIM and DNSMOS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r["mode"] for r in records))
    has_mos = "dnsmos" in records[0]["output"]
    fig, axes = plt.subplots(1, 3 if has_mos else 2, figsize=(13 if has_mos else 9, 3.8))
    for mode, color in zip(modes, ("tab:blue", "tab:orange")):
        rows = [r for r in records if r["mode"] == mode]
        truth, output = [r["truth"]["sim"] for r in rows], [r["output"]["sim"] for r in rows]
        axes[0].scatter(truth, output, s=14, alpha=0.7, color=color, label=mode)
        axes[1].hist(output, bins=20, alpha=0.5, color=color, label=f"{mode}: model")
        axes[1].hist(truth, bins=20, histtype="step", color=color, label=f"{mode}: ground truth")
        if has_mos:
            axes[2].hist([r["output"]["dnsmos"] for r in rows], bins=20, alpha=0.5, color=color, label=f"{mode}: model")
            axes[2].hist([r["truth"]["dnsmos"] for r in rows], bins=20, histtype="step", color=color, label=f"{mode}: ground truth")
    low = min(0.0, *(min(r["truth"]["sim"], r["output"]["sim"]) for r in records))
    axes[0].plot([low, 1], [low, 1], color="grey", lw=0.8, ls="--")
    axes[0].set(xlabel="SIM(ground truth, prompt)", ylabel="SIM(model output, prompt)", title="speaker similarity per utterance")
    axes[1].set(xlabel="SIM(·, prompt)", ylabel="utterances", title="speaker similarity")
    if has_mos:
        axes[2].set(xlabel="DNSMOS OVRL", ylabel="utterances", title="naturalness estimate")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
