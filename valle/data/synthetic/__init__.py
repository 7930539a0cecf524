"""The offline synthetic multi-speaker corpus: demos, CI and the bundled model train on it."""

from valle.data.synthetic.corpus import CorpusConfig, CorpusSummary, build_synthetic_corpus

__all__ = ["CorpusConfig", "CorpusSummary", "build_synthetic_corpus"]
