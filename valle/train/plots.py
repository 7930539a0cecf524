"""Training curves from metrics JSONL files (one JSON object per logged step)."""

import json
from pathlib import Path

from valle.errors import ConfigError


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        raise ConfigError(f"metrics file {path} does not exist; training writes it as OUT/metrics.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(files: list[Path], keys: list[str], out: Path, title: str = "") -> Path:
    """One panel per key; several files are runs that continue one another (steps add up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [read_metrics(path) for path in files]
    for key in keys:
        if not any(key in record for run in runs for record in run):
            raise ConfigError(f"no metric {key!r} in {', '.join(map(str, files))}; "
                              f"available: {', '.join(sorted({k for run in runs for r in run for k in r}))}")
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.4 * len(keys)), sharex=True, squeeze=False)
    offset = 0
    for index, (path, run) in enumerate(zip(files, runs)):
        steps = [offset + record["step"] for record in run]
        for ax, key in zip(axes[:, 0], keys):  # held-out scores are logged less often than training metrics
            points = [(step, record[key]) for step, record in zip(steps, run) if key in record]
            ax.plot(*zip(*points) if points else ([], []), marker="." if len(points) < 30 else None,
                    label=f"run {index + 1}: {path.parent.name}")
            ax.set_ylabel(key)
        offset = steps[-1] if steps else offset
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if len(files) > 1:
        axes[0, 0].legend(fontsize=7)
    fig.suptitle(title or "training curves")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
