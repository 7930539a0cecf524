"""Training: metrics and their plots (the VALL-E trainer joins them here)."""
