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


def monotonic_path(log_probs: np.ndarray, max_advance: int = 3) -> np.ndarray:
    """The most likely phoneme of each step `[S]` from `log_probs` `[S, P]`: never backwards, at most `max_advance`
    phonemes a step, starting at one of the first two and ending at one of the last two.

    Stress marks, word gaps and punctuation often take no audio of their own, so a step
    may pass over them (Glow-TTS's monotonic alignment search, with skips).
    """
    steps, p = log_probs.shape
    best = np.full(p, -np.inf)
    best[:2] = log_probs[0, :2]
    moves = np.zeros((steps, p), dtype=np.int8)
    for t in range(1, steps):
        candidates = np.stack([best] + [np.concatenate([np.full(min(k, p), -np.inf), best[:-k]])[:p]
                                        for k in range(1, max_advance + 1)])
        moves[t] = candidates.argmax(0)
        best = candidates.max(0) + log_probs[t]
    path = np.empty(steps, dtype=np.int64)
    path[-1] = p - 1 if p < 2 or best[p - 1] >= best[p - 2] else p - 2
    for t in range(steps - 1, 0, -1):
        path[t - 1] = path[t] - moves[t, path[t]]
    return path


@torch.no_grad()
def phoneme_path(model: ARModel, phonemes: Tensor, codes: Tensor, heads: Tensor, languages: Tensor | None = None) -> Tensor:
    """`[T]`: the phoneme spoken in each frame of `codes` `[K, T]`, read from the attention of `heads`.

    `heads` are flat indices (layer * n_heads + head) of the model's most monotonic heads
    (`head_monotonicity`); their log-attention is averaged, and the path through it found
    at the model's step (a group of frames), then repeated for the group's frames.
    `languages` `[P]`: the phonemes' language ids, for a stage that takes them.
    """
    maps = attention_maps(model, phonemes, codes, languages=languages).flatten(0, 1)[heads]  # [heads, steps, P]
    log_probs = maps.float().clamp(min=1e-6).log().mean(0).cpu().numpy()
    steps = -(-codes.shape[1] // model.config.group_size)  # the end token's step has no frames
    path = torch.from_numpy(monotonic_path(log_probs[:steps]))
    return path.repeat_interleave(model.config.group_size)[:codes.shape[1]]
