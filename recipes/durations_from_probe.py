"""A frame stage speaking at the durations another frame stage gives, through the zero-shot benchmark.

On the test voices with the strongest accents, the stage with attention to the prompt's frames and the bundled
stage lose as many words at the recordings' own durations; at their own, the bundled stage keeps far more of them
(recipes/tournament.md, "Where the accented voices lose their words"). Here the `--model`'s stage renders the frames
that STAGE's duration head gives, for the prompt's pace and for the sentence.

    python recipes/durations_from_probe.py STAGE -- ZERO_SHOT_ARGS

STAGE is a frame stage folder (`valle/infer/pretrained/default/frames`); ZERO_SHOT_ARGS are `benchmarks/zero_shot.py`'s.
"""

import sys

from torch import Tensor
from zero_shot_run import zero_shot

from valle.model import Stage
from valle.model.frames import FrameModel, path_of


def durations_from(folder: str) -> None:
    """Patch `FrameModel` so that every stage's frames are counted by the stage in `folder`."""
    timer = Stage.from_pretrained(folder).eval()
    durations = FrameModel.durations

    def timed(self: FrameModel, phonemes: Tensor, prompt: Tensor, sounding: Tensor, languages: Tensor | None = None,
              pace: float = 1.0) -> Tensor:
        if self.config.languages != timer.config.languages:
            raise SystemExit("the two stages number their languages differently")
        return durations(timer, phonemes, prompt, sounding, languages, pace)

    def generate(self: FrameModel, phonemes: Tensor, prompt: Tensor, sounding: Tensor, languages: Tensor | None = None,
                 pace: float = 1.0, **rendering) -> Tensor:
        path = path_of(timed(self, phonemes, prompt, sounding, languages, pace))
        return self.render(phonemes, path, prompt, languages, **rendering)

    FrameModel.durations, FrameModel.generate = timed, generate


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.exit(__doc__)
    durations_from(sys.argv[1])
    sys.exit(zero_shot(sys.argv[3:]))


if __name__ == "__main__":
    main()
