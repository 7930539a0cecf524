"""Text + a voice prompt -> speech: the zero-shot synthesis pipeline."""

from valle.infer.pipeline import Synthesis, VallE

__all__ = ["Synthesis", "VallE"]
