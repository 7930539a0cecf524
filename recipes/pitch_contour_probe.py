"""A frame stage told the pitch, with its predicted contour moved at synthesis, through the zero-shot benchmark.

The stage predicts each frame's log2 F0 relative to the prompt's median. For unheard people it places the contour a
couple of semitones off their prompts, and a regressed contour, an average, swings less than its speaker's. Here each
sentence's prediction is moved by ANCHOR times the median of its voiced frames (1: the sentence's median lies on the
prompt's exactly; 0: as predicted), and its swings about that median are widened by SCALE (1: as predicted; 0: a
monotone).

    python recipes/pitch_contour_probe.py ANCHOR SCALE -- ZERO_SHOT_ARGS

ZERO_SHOT_ARGS are `benchmarks/zero_shot.py`'s, with a `--model` told the pitch. (recipes/tournament.md,
recipes/default_model.md)
"""

import sys

from torch import Tensor
from zero_shot_run import zero_shot

from valle.model.frames import FrameModel, Voice


def move_pitch(anchor: float, scale: float) -> None:
    """Patch `FrameModel.predict_pitch` so that in synthesis each sentence's voiced median moves toward 0 by ANCHOR
    and its swings about it grow by SCALE."""
    predict = FrameModel.predict_pitch

    def predict_pitch(self: FrameModel, x: Tensor, valid: Tensor, voice: Voice) -> tuple[Tensor, Tensor]:
        voiced, relative = predict(self, x, valid, voice)
        on = voiced > 0
        if not self.training and on.any():
            median = relative[on].float().median().to(relative.dtype)
            relative = relative - anchor * median + (scale - 1) * (relative - median)
        return voiced, relative

    FrameModel.predict_pitch = predict_pitch


def main() -> None:
    if "--" not in sys.argv or sys.argv.index("--") != 3:
        sys.exit(__doc__)
    move_pitch(float(sys.argv[1]), float(sys.argv[2]))
    sys.exit(zero_shot(sys.argv[4:]))


if __name__ == "__main__":
    main()
