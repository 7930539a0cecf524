"""A frame stage with its language input held at "no language", through the zero-shot benchmark.

The stage adds a language's embedding to every phoneme. If that embedding also carried the timbre of the synthetic
speakers of its language, a person speaking it would be rendered nearer them; with the input held at "no language"
(the zero vector padding carries) they would keep more of their own voice.

    python recipes/language_off_probe.py -- ZERO_SHOT_ARGS

ZERO_SHOT_ARGS are `benchmarks/zero_shot.py`'s, with a `--model` whose stage has a language input.
(recipes/default_model.md)
"""

import sys

from torch import Tensor
from zero_shot_run import zero_shot

from valle.model.frames import FrameModel


def language_off() -> None:
    """Patch `FrameModel.encode_text` so that every phoneme is told "no language"."""
    encode = FrameModel.encode_text

    def encode_text(self: FrameModel, phonemes: Tensor, phoneme_lens: Tensor, languages: Tensor | None = None) -> Tensor:
        return encode(self, phonemes, phoneme_lens, None)

    FrameModel.encode_text = encode_text


def main() -> None:
    if "--" not in sys.argv or sys.argv.index("--") != 1:
        sys.exit(__doc__)
    language_off()
    sys.exit(zero_shot(sys.argv[2:]))


if __name__ == "__main__":
    main()
