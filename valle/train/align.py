"""Frame-by-frame phoneme alignments of a tokenised corpus, read from a trained AR stage's attention.

A stage with a phoneme pointer (`ModelConfig.phoneme_pointer`) is told, at every step,
which phoneme it is speaking; in training that comes from here. An AR stage that reads
the phonemes in order (alignment score near 1, `valle.model.alignment`) already knows
where each frame is in the text: its most monotonic heads, searched for the best
monotonic path, give the phoneme of every frame without a separate aligner.
"""

import multiprocessing
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from valle.data.shards import TokenizedCorpus, write_alignments
from valle.errors import ConfigError
from valle.model.alignment import head_monotonicity, phoneme_path
from valle.model.ar import ARModel
from valle.train.batching import utterance_languages

MIN_ALIGNMENT = 0.9  # a stage whose best head scores less does not read in order well enough to align with
PROBE_PHONEMES = 10  # heads are scored on utterances this long or longer: a rank correlation over a word means little


_worker: tuple[ARModel, TokenizedCorpus, Tensor, Tensor] | None = None  # a worker's stage, corpus, heads, silent ids


def _start_worker(model: ARModel, directory: Path, heads: Tensor) -> None:
    global _worker
    torch.set_num_threads(1)
    corpus = TokenizedCorpus(directory)
    _worker = model, corpus, heads, torch.tensor(corpus.vocab.silent())


def _align(position: int) -> Tensor:
    model, corpus, heads, silent = _worker
    u = corpus[position]
    return phoneme_path(model, u.phonemes, u.codes, heads, utterance_languages(u, model), silent[u.phonemes])


def align_corpus(directory: str | Path, stage: str | Path, heads: int = 3, probe_utterances: int = 16,
                 min_alignment: float = MIN_ALIGNMENT, workers: int = 1) -> Path:
    """Write `alignments.safetensors` into the tokenised folder `directory`, from the AR stage folder `stage`.

    The `heads` most monotonic heads are chosen on `probe_utterances` of the corpus of at least
    PROBE_PHONEMES phonemes (single-word prompts, common in recorded voice menus, say nothing of
    order); the best must score `min_alignment`. `workers` processes (one thread each) share the
    utterances; the result does not depend on how many. Every phoneme but stress marks, word
    gaps and punctuation gets at least one step of the stage.
    """
    model = ARModel.from_pretrained(stage)
    corpus = TokenizedCorpus(directory)
    vocab = model.trained_on.vocab
    if corpus.vocab.tokens[:len(vocab)] != vocab.tokens[:len(corpus.vocab)]:
        raise ConfigError(f"{stage} was trained on another phoneme vocabulary than {directory}'s; align with a stage "
                          "trained on this vocabulary")
    long_enough = [i for i in range(len(corpus)) if corpus.n_phonemes[i] >= PROBE_PHONEMES] or list(range(len(corpus)))
    probe = [corpus[i] for i in long_enough[::max(1, len(long_enough) // probe_utterances)][:probe_utterances]]
    scores = head_monotonicity(model, [(u.phonemes, u.codes, None) for u in probe],
                               [utterance_languages(u, model) for u in probe]).flatten()
    chosen = scores.topk(min(heads, len(scores))).indices
    if float(scores[chosen[0]]) < min_alignment:
        raise ConfigError(f"{stage}'s most monotonic attention head scores {float(scores[chosen[0]]):.2f} (below "
                          f"{min_alignment}): it does not read the phonemes in order; align with a better-trained AR stage")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (model, corpus.directory, chosen)) as pool:
        paths = list(tqdm(pool.imap(_align, range(len(corpus)), chunksize=8), total=len(corpus),
                          desc=f"aligning {directory}", unit="utt"))
    return write_alignments(directory, paths, source=f"{Path(stage).resolve()} heads {chosen.tolist()}, phones one step or more")

