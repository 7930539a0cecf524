"""A frame stage told the pitch, with its predicted contour's swings about their median widened, through the zero-shot benchmark.

A regressed contour is an average, and averages swing less: a sentence spoken at the contour the stage predicts is
flatter than its speaker says it, as its latents are flatter than real ones before `variance` gives them back their
spread. Here each sentence's predicted log2 F0 is moved away from the median of its voiced frames by SCALE times its
distance from it (1: as predicted; 0: a monotone at the median).

    python recipes/pitch_spread_probe.py SCALE -- ZERO_SHOT_ARGS

ZERO_SHOT_ARGS are `benchmarks/zero_shot.py`'s, with a `--model` told the pitch. (recipes/default_model.md)
"""

import sys

from torch import Tensor
from zero_shot_run import zero_shot

from valle.model.frames import FrameModel, Voice


def widen_pitch(scale: float) -> None:
    """Patch `FrameModel.predict_pitch` so that in synthesis each sentence's contour swings SCALE times as far."""
    predict = FrameModel.predict_pitch

    def predict_pitch(self: FrameModel, x: Tensor, valid: Tensor, voice: Voice) -> tuple[Tensor, Tensor]:
        voiced, relative = predict(self, x, valid, voice)
        on = voiced > 0
        if not self.training and on.any():
            median = relative[on].float().median().to(relative.dtype)
            relative = median + scale * (relative - median)
        return voiced, relative

    FrameModel.predict_pitch = predict_pitch


def main() -> None:
    if "--" not in sys.argv or sys.argv.index("--") != 2:
        sys.exit(__doc__)
    widen_pitch(float(sys.argv[1]))
    sys.exit(zero_shot(sys.argv[3:]))


if __name__ == "__main__":
    main()
