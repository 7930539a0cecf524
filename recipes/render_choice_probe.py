"""Two choices a frame stage's synthesis could make per sentence, measured through the zero-shot benchmark.

`hold`: the map toward the prompt (`--prompt-map`) costs words on some prompts and not on others. Each
sentence is rendered at every hold of HOLDS, at the same durations, and the shipped phoneme aligner reads
each rendering's codes: the mean log-posterior of the phoneme each frame was rendered for. The strongest
hold whose reading falls no more than DELTA nats below the rendering without a map is kept.

`fine`: a regressed latent is an average, and a voice's detail lies in what is averaged away. Each output
frame keeps the codes of its first SPLIT levels and takes those above from the prompt frames nearest it
in the latent of those levels (K nearest: their residual above SPLIT averaged, then quantised again).

    python recipes/render_choice_probe.py hold DELTA [HOLDS ...] -- ZERO_SHOT_ARGS     # HOLDS default 0 0.1 0.3 1
    python recipes/render_choice_probe.py fine SPLIT K -- ZERO_SHOT_ARGS

ZERO_SHOT_ARGS are `benchmarks/zero_shot.py`'s; `hold` needs a nonzero `--prompt-map` there, so that the
prompt's words are read. With CHOICES=FILE, `hold` writes one JSON line per sentence: each hold's
reading (log-posterior, frames read as their phoneme) and the hold kept. (recipes/tournament.md)
"""

import json
import os
import sys
from pathlib import Path

import torch
from torch import Tensor
from zero_shot_run import zero_shot

from valle.infer.pipeline import Job, VallE
from valle.model.aligner import FrameAligner
from valle.model.frames import FrameModel, path_of, quantize


def reading(aligner: FrameAligner, codes: Tensor, phonemes: Tensor, path: Tensor, sounding: Tensor) -> tuple[float, float]:
    """How plainly the aligner hears each sounding frame of `codes` `[K, T]` as the phoneme `path` `[T]` gave it."""
    log_posteriors = aligner(codes[None].long(), torch.tensor([codes.shape[1]]))[0].float().log_softmax(-1)
    intended = phonemes[path]
    keep = sounding[path]
    score = log_posteriors.gather(1, intended[:, None])[:, 0][keep].mean()
    heard = (log_posteriors.argmax(-1) == intended)[keep].float().mean()
    return float(score), float(heard)


def choose_hold(delta: float, holds: list[float], log: Path | None) -> None:
    single_map = VallE.prompt_map

    def prompt_map(self: VallE, codes, words, sampling, prompt_pitch):  # every hold's map, None for 0
        return {hold: single_map(self, codes, words, sampling.updated(prompt_map=hold), prompt_pitch) if hold else None
                for hold in holds}

    def render(self: VallE, job: Job) -> Tensor:
        sounding = self._sounding.to(job.phonemes.device)[job.phonemes]
        config = job.sampler.config
        path = path_of(self.frames.durations(job.phonemes, job.prompt_codes, sounding, job.languages, pace=job.pace))
        aligner = self._load_aligner()
        renderings, readings = {}, {}
        for hold, latent_map in job.latent_map.items():
            renderings[hold] = self.frames.render(job.phonemes, path, job.prompt_codes, job.languages,
                                                  prompt_pitch=job.prompt_pitch, variance=config.variance,
                                                  feedback=config.voice_feedback, latent_map=latent_map)
            readings[hold] = reading(aligner, renderings[hold], job.phonemes, path, sounding)
        floor = readings[holds[0]][0] - delta
        kept = max(hold for hold in holds if readings[hold][0] >= floor)
        if log is not None:
            with log.open("a") as f:
                f.write(json.dumps({"readings": {str(h): r for h, r in readings.items()}, "kept": kept}) + "\n")
        return renderings[kept]

    VallE.prompt_map, VallE.render = prompt_map, render


def borrow_fine_levels(split: int, k: int) -> None:
    rendered = FrameModel._render

    def first_levels(model: FrameModel, codes: Tensor) -> Tensor:
        """The latent of the first `split` levels of codes `[K, T]`, `[T, D]`."""
        return model.latents(codes[None, :split])[0].float()

    def _render(self: FrameModel, text, path, voice, prompt, *args, **kwargs) -> Tensor:
        codes = rendered(self, text, path, voice, prompt, *args, **kwargs)
        nearest = torch.cdist(first_levels(self, codes), first_levels(self, prompt))
        nearest = nearest.topk(k, dim=1, largest=False).indices  # [T, k] prompt frames
        if k == 1:
            return torch.cat([codes[:split], prompt[split:, nearest[:, 0]]])
        above = self.latents(prompt[None])[0].float() - first_levels(self, prompt)
        upper = quantize(above[nearest].mean(1), self.codebooks[split:])
        return torch.cat([codes[:split], upper.to(codes.dtype)])

    FrameModel._render = _render


def main() -> None:
    if "--" not in sys.argv or len(sys.argv) < 4 or sys.argv[1] not in ("hold", "fine"):
        sys.exit(__doc__)
    cut = sys.argv.index("--")
    mode, values, benchmark_args = sys.argv[1], sys.argv[2:cut], sys.argv[cut + 1:]
    if mode == "hold":
        holds = [float(h) for h in values[1:]] or [0.0, 0.1, 0.3, 1.0]
        log = os.environ.get("CHOICES")
        choose_hold(float(values[0]), holds, Path(log) if log else None)
    else:
        borrow_fine_levels(int(values[0]), int(values[1]))
    sys.exit(zero_shot(benchmark_args))


if __name__ == "__main__":
    main()
