"""Training the codec and the AR and NAR stages: batching, the trainers, metrics and their plots."""
