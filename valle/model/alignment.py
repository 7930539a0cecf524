"""Does the AR stage read the phonemes in order? The monotonic attention heads.

A codec language model that speaks its text grows attention heads in which each audio
step attends most to the phoneme being spoken, in order. A model that predicts its next
frames well from the last ones alone can do without the text for a long time: its
held-out loss falls while it babbles. So designs are also compared by this score: for
every head, the rank correlation (Spearman) between an audio step and the phoneme it
attends most, averaged over utterances; the best head scores near 1 in a model that
reads in order and near 0 in one that does not.
"""

import numpy as np
import torch
from torch import Tensor

from valle.model.ar import ARModel


@torch.no_grad()
def attention_maps(model: ARModel, phonemes: Tensor, codes: Tensor, alignment: Tensor | None = None,
                   languages: Tensor | None = None) -> Tensor:
    """`[layers, heads, audio steps, phonemes]`: where each audio step attends among the phonemes, teacher-forced.

    One utterance: `phonemes` `[P]`, `codes` `[K, T]` (and its `alignment` `[T]`, for a stage with a phoneme pointer;
    its phonemes' `languages` `[P]`, for a stage that takes them).
    """
    inputs: list[tuple[Tensor, Tensor]] = []
    hooks = [layer.attention.register_forward_pre_hook(lambda _, args: inputs.append((args[0], args[1])))
             for layer in model.layers]
    try:
        lengths = torch.tensor([len(phonemes), codes.shape[1]], device=phonemes.device)
        model(phonemes[None], lengths[:1], codes[None], lengths[1:], None if languages is None else languages[None],
              None if alignment is None else alignment[None].to(phonemes.device))
    finally:
        for hook in hooks:
            hook.remove()
    p = len(phonemes)
    return torch.stack([layer.attention.weights(x, mask)[0, :, p:, :p] for layer, (x, mask) in zip(model.layers, inputs)])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks, ties given their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation; 0 when either side is constant."""
    ra, rb = _ranks(a) - (len(a) - 1) / 2, _ranks(b) - (len(b) - 1) / 2
    scale = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / scale) if scale > 0 else 0.0


def head_monotonicity(model: ARModel, utterances: list[tuple[Tensor, Tensor, Tensor | None]],
                      languages: list[Tensor | None] | None = None) -> Tensor:
    """`[layers, heads]`: each head's Spearman between audio step and most-attended phoneme, averaged over
    `utterances` (phonemes, codes and, for a stage with a phoneme pointer, alignment), with each one's phoneme
    `languages` for a stage that takes them."""
    was_training = model.training
    model.eval()
    total = None
    for i, (phonemes, codes, alignment) in enumerate(utterances):
        maps = attention_maps(model, phonemes, codes, alignment, languages[i] if languages else None)
        maps = maps.argmax(-1).cpu().numpy()  # [L, H, steps]
        steps = np.arange(maps.shape[-1])
        scores = torch.tensor([[spearman(steps, head) for head in layer] for layer in maps])
        total = scores if total is None else total + scores
    model.train(was_training)
    return total / len(utterances)


def monotonic_path(log_probs: np.ndarray, max_advance: int = 3, silent: np.ndarray | None = None) -> np.ndarray:
    """The most likely phoneme of each step `[S]` from `log_probs` `[S, P]`: never backwards, at most `max_advance`
    phonemes a step, starting at one of the first two and ending at one of the last two (the second of
    them only where the phoneme passed over may be).

    Stress marks, word gaps and punctuation often take no audio of their own, so a step
    may pass over them (Glow-TTS's monotonic alignment search, with skips). Where `silent`
    `[P]` says which phonemes those are, only they are passed over and every other phoneme
    gets at least one step: attention alone gives a long vowel the steps of the consonants
    around it. Where there are fewer steps than sounding phonemes, any may be passed over.
    """
    steps, p = log_probs.shape
    silent = np.ones(p, dtype=bool) if silent is None else np.asarray(silent, dtype=bool)
    between_silent = _between_silent(silent, max_advance)  # which moves are allowed into each phoneme
    best = np.full(p, -np.inf)
    best[0] = log_probs[0, 0]
    if p > 1 and silent[0]:
        best[1] = log_probs[0, 1]
    moves = np.zeros((steps, p), dtype=np.int8)
    for t in range(1, steps):
        moved = [np.concatenate([np.full(min(k, p), -np.inf), best[:-k]])[:p] for k in range(1, max_advance + 1)]
        candidates = np.stack([best] + [np.where(allowed, m, -np.inf) for allowed, m in zip(between_silent, moved)])
        moves[t] = candidates.argmax(0)
        best = candidates.max(0) + log_probs[t]
    ends = [p - 1] + ([p - 2] if p > 1 and silent[p - 1] else [])
    if not np.isfinite(best[ends]).any() and not silent.all():  # too few steps to give every phoneme one
        return monotonic_path(log_probs, max_advance)
    path = np.empty(steps, dtype=np.int64)
    path[-1] = max(ends, key=lambda j: best[j])
    for t in range(steps - 1, 0, -1):
        path[t - 1] = path[t] - moves[t, path[t]]
    return path


def _between_silent(silent: np.ndarray, max_advance: int) -> list[np.ndarray]:
    """`[k - 1][j]`: whether the phonemes strictly between j - k and j are all silent, for moves k = 1..max_advance."""
    out = [np.ones(len(silent), dtype=bool)]
    for k in range(2, max_advance + 1):
        out.append(out[-1] & np.concatenate([np.zeros(k - 1, dtype=bool), silent[:max(0, len(silent) - k + 1)]])[:len(silent)])
    return out
