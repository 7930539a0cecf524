"""Corpora, manifests and (later) tokenised shards: everything between raw files and batches."""
