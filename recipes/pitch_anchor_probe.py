"""A frame stage told the pitch, with its predicted contour held to the prompt's level, through the zero-shot benchmark.

The stage predicts each frame's log2 F0 relative to the prompt's median, and for unheard people it places the
contour a couple of semitones off their prompts. Here the prediction of each sentence is moved by ANCHOR times
the median of its voiced frames (1: the sentence's median lies on the prompt's exactly; 0: as predicted).

    python recipes/pitch_anchor_probe.py ANCHOR -- ZERO_SHOT_ARGS

ZERO_SHOT_ARGS are `benchmarks/zero_shot.py`'s, with a `--model` told the pitch. (recipes/tournament.md)
"""

import sys

from torch import Tensor
from zero_shot_run import zero_shot

from valle.model.frames import FrameModel, Voice


def anchor_pitch(anchor: float) -> None:
    """Patch `FrameModel.predict_pitch` so that in synthesis each sentence's voiced median moves toward 0."""
    predict = FrameModel.predict_pitch

    def predict_pitch(self: FrameModel, x: Tensor, valid: Tensor, voice: Voice) -> tuple[Tensor, Tensor]:
        voiced, relative = predict(self, x, valid, voice)
        on = voiced > 0
        if not self.training and on.any():
            relative = relative - anchor * relative[on].float().median().to(relative.dtype)
        return voiced, relative

    FrameModel.predict_pitch = predict_pitch


def main() -> None:
    if "--" not in sys.argv or sys.argv.index("--") != 2:
        sys.exit(__doc__)
    anchor_pitch(float(sys.argv[1]))
    sys.exit(zero_shot(sys.argv[3:]))


if __name__ == "__main__":
    main()
