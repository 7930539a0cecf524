"""Scoring synthesised speech: speaker similarity (and, later, WER, MOS estimates, speed)."""
