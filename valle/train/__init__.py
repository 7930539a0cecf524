"""Training the AR and NAR stages: batching, the trainer, metrics and their plots."""
