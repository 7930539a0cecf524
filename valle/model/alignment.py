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
def attention_maps(model: ARModel, phonemes: Tensor, codes: Tensor) -> Tensor:
    """`[layers, heads, audio steps, phonemes]`: where each audio step attends among the phonemes, teacher-forced.

    One utterance: `phonemes` `[P]`, `codes` `[K, T]`.
    """
    inputs: list[tuple[Tensor, Tensor]] = []
    hooks = [layer.attention.register_forward_pre_hook(lambda _, args: inputs.append((args[0], args[1])))
             for layer in model.layers]
    try:
        lengths = torch.tensor([len(phonemes), codes.shape[1]], device=phonemes.device)
        model(phonemes[None], lengths[:1], codes[None], lengths[1:])
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


def head_monotonicity(model: ARModel, utterances: list[tuple[Tensor, Tensor]]) -> Tensor:
    """`[layers, heads]`: each head's Spearman between audio step and most-attended phoneme, averaged over `utterances`."""
    was_training = model.training
    model.eval()
    total = None
    for phonemes, codes in utterances:
        maps = attention_maps(model, phonemes, codes).argmax(-1).cpu().numpy()  # [L, H, steps]
        steps = np.arange(maps.shape[-1])
        scores = torch.tensor([[spearman(steps, head) for head in layer] for layer in maps])
        total = scores if total is None else total + scores
    model.train(was_training)
    return total / len(utterances)
