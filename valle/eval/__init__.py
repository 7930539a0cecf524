"""Scoring synthesised speech: WER, speaker similarity and identification, DNSMOS, real-time factor."""
