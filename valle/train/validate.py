"""Held-out loss and accuracy per codebook level: how designs are compared before anything is decoded.

Both stages are scored teacher-forced on utterances of speakers they never trained on:
the AR stage on its levels of every utterance, the NAR stage on every level it predicts
of every utterance, with a prompt slice drawn from a fixed seed. Each level's loss is
the cross-entropy of that level given everything below it in the stage's order, so
the losses of the AR's levels and the NAR's levels add up to the negative
log-likelihood of a whole frame (`loss_per_frame`, in nats): a number that compares
designs that split the levels between the stages differently. The AR stage is also
scored by how well it reads the phonemes in order (`alignment`, its most monotonic
attention head, `valle.model.alignment`): a low loss with no such head is a model
that predicts audio from audio and will babble. And by how much its text lowers its
loss (`text_gain`, nats per frame: the same utterances scored without their phonemes,
and without a pointer's, less scored with them): a stage that continues audio from
audio alone gains little from the text, and running on its own samples says nothing.
(Only a stage trained with `text_dropout` has learnt to go on without text; for any
other the gain also counts how lost it is without it.) For a stage with a phoneme
pointer, `text_gain_onsets` is the same at the frames where the alignment starts a
new phoneme, where which sound comes next is the text's to say.

The frame stage is scored on what it predicts: the error of its latents (`loss_latent`, as
trained) and of its durations (`loss_duration`; `duration_error`, mean frames off per
phoneme), and per level the share of frames whose code, quantised from its latent, is the
real one (`accuracy_levelL`: exact, not top-10, as it makes one guess).
"""

from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from valle.data.shards import TokenizedCorpus
from valle.model.alignment import head_monotonicity
from valle.model.ar import NOT_SAID, ARModel, phoneme_onsets
from valle.model.frames import FrameModel, frames_of
from valle.model.layers import lengths_to_mask
from valle.model.nar import NARBatch, NARModel, split_prompt
from valle.model.stage import IGNORE, Stage, StageOutput
from valle.train.batching import (
    BucketBatchSampler,
    OtherUtterances,
    collate,
    collate_alignments,
    collate_pitch,
    phoneme_languages,
    utterance_languages,
    voice_prompts,
)


@torch.no_grad()
def heldout_metrics(model: ARModel | NARModel | FrameModel, corpus: TokenizedCorpus, max_tokens: int = 8000,
                    max_utterances: int | None = None, prompt_seconds: float = 3.0, seed: int = 0,
                    progress: bool = False, alignment_utterances: int = 8, other_prompts: bool = False) -> dict[str, float]:
    """`loss`, `accuracy` (top-10) and `loss_levelL` / `accuracy_levelL` for each level L (1-based) the stage predicts;
    for the AR stage also `alignment`, over `alignment_utterances` of them, and `text_gain`.
    With `other_prompts`, a frame stage reads each voice off another utterance of its speaker, as one trained with
    `voice_prompt` "other" does: a stage that attends to its prompt's frames would copy a slice of its own target.

    `max_utterances` spread evenly over `corpus` (all by default, so every speaker
    counts), in length-sorted batches of about `max_tokens`.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    count = len(corpus) if max_utterances is None else min(len(corpus), max_utterances)
    chosen = [round(i * len(corpus) / count) for i in range(count)]
    n_phonemes, n_frames = [corpus.n_phonemes[i] for i in chosen], [corpus.n_frames[i] for i in chosen]
    budget = max(max_tokens, *(p + f for p, f in zip(n_phonemes, n_frames)))  # the longest utterance fits alone
    batches = BucketBatchSampler(n_phonemes, n_frames, budget).batches
    prompt_frames = max(1, round(prompt_seconds * corpus.codec.frame_rate))
    generator = torch.Generator().manual_seed(seed)
    if isinstance(model, FrameModel):
        others = OtherUtterances(corpus.speakers()) if other_prompts else None
        metrics = _frame_metrics(model, corpus, [[chosen[i] for i in batch] for batch in batches], prompt_frames, generator,
                                 progress, others)
        model.train(was_training)
        return metrics
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    advance_sums = [0.0, 0.0, 0]
    untold_sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # the AR's, scored without the text
    onset_sums = [0.0, 0]  # the text's worth summed over the frames that start a phoneme, and their number
    for batch in tqdm(batches, desc="held-out", unit="batch", disable=not progress, leave=False):
        items = [corpus[chosen[i]] for i in batch]
        phonemes, phoneme_lens, codes, code_lens = (t.to(device) for t in collate(items))
        languages = phoneme_languages(items, model, phonemes.shape[1], device)
        if isinstance(model, ARModel):
            alignment = collate_alignments(items, model, codes.shape[2], device)
            outputs = [model(phonemes, phoneme_lens, codes, code_lens, languages, alignment)]
            untold = model(phonemes, torch.zeros_like(phoneme_lens), codes, code_lens, languages,
                           None if alignment is None else torch.full_like(alignment, NOT_SAID))
            for level, values in untold.level_sums().items():
                untold_sums[level] = [a + b for a, b in zip(untold_sums[level], values)]
            if alignment is not None:
                onsets = phoneme_onsets(alignment, code_lens)
                gain = _frame_losses(untold, alignment.shape[1]) - _frame_losses(outputs[0], alignment.shape[1])
                onset_sums = [onset_sums[0] + float(gain[onsets].sum()), onset_sums[1] + int(onsets.sum())]
        else:
            split = split_prompt(codes, code_lens, prompt_frames, generator)
            outputs = [model(NARBatch(phonemes, phoneme_lens, *split, torch.full_like(code_lens, level), languages))
                       for level in range(model.first_level, model.config.n_codebooks)]
        for out in outputs:
            for level, values in out.level_sums().items():
                sums[level] = [a + b for a, b in zip(sums[level], values)]
            advance_sums = [a + b for a, b in zip(advance_sums, out.advance_sums())]
    metrics = {}
    if isinstance(model, ARModel) and alignment_utterances:
        picked = [corpus[chosen[round(i * count / min(count, alignment_utterances))]] for i in range(min(count, alignment_utterances))]
        scores = head_monotonicity(model, [(u.phonemes.to(device), u.codes.to(device), u.alignment) for u in picked],
                                   [utterance_languages(u, model, device) for u in picked])
        metrics["alignment"] = float(scores.max())
    if advance_sums[2]:  # a phoneme pointer: how well the next step's phoneme is predicted
        metrics["loss_advance"], metrics["accuracy_advance"] = advance_sums[0] / advance_sums[2], advance_sums[1] / advance_sums[2]
    model.train(was_training)
    for level in sorted(sums):
        loss, hits, n = sums[level]
        metrics[f"loss_level{level + 1}"], metrics[f"accuracy_level{level + 1}"] = loss / n, hits / n
    if untold_sums:
        metrics["text_gain"] = sum(untold_sums[level][0] / n - sums[level][0] / n for level, (_, _, n) in sums.items())
    if onset_sums[1]:
        metrics["text_gain_onsets"] = onset_sums[0] / onset_sums[1]
    total = [sum(values[i] for values in sums.values()) for i in range(3)]
    return {"loss": total[0] / total[2], "accuracy": total[1] / total[2], **metrics}


def _frame_metrics(model: FrameModel, corpus: TokenizedCorpus, batches: list[list[int]], prompt_frames: int,
                   generator: torch.Generator, progress: bool, others: OtherUtterances | None) -> dict[str, float]:
    device = next(model.parameters()).device
    sums = defaultdict(float)
    hits: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for positions in tqdm(batches, desc="held-out", unit="batch", disable=not progress, leave=False):
        items = [corpus[i] for i in positions]
        phonemes, phoneme_lens, codes, code_lens = (t.to(device) for t in collate(items))
        alignment = collate_alignments(items, model, codes.shape[2], device)
        pitch = collate_pitch(items, model, codes.shape[2], device)
        prompt, prompt_lens, prompt_pitch = voice_prompts(corpus, positions, codes, code_lens, pitch, model, prompt_frames,
                                                          generator, others)
        out = model(phonemes, phoneme_lens, codes, code_lens, alignment, prompt, prompt_lens,
                    phoneme_languages(items, model, phonemes.shape[1], device), pitch, prompt_pitch)
        frames, phones = float(code_lens.sum()), float(phoneme_lens.sum())
        sums["latent"] += float(out.latent_loss) * frames
        sums["duration"] += float(out.duration_loss) * phones
        sums["pitch"] += float(out.pitch_loss) * frames
        sums["code"] += float(out.code_loss) * frames
        told = lengths_to_mask(phoneme_lens, phonemes.shape[1])
        sums["duration_error"] += float((frames_of(out.durations) - out.frame_counts).abs()[told].sum())
        sums["frames"] += frames
        sums["phonemes"] += phones
        for level, (right, n) in enumerate(model.code_hits(out.latent, codes, code_lens)):
            hits[level] = [hits[level][0] + right, hits[level][1] + n]
    metrics = {"loss_latent": sums["latent"] / sums["frames"], "loss_duration": sums["duration"] / sums["phonemes"],
               "duration_error": sums["duration_error"] / sums["phonemes"]}
    if model.config.pitch:
        metrics["loss_pitch"] = sums["pitch"] / sums["frames"]
    if model.config.code_loss:
        metrics["loss_code"] = sums["code"] / sums["frames"]
    metrics["loss"] = (metrics["loss_latent"] + metrics["loss_duration"] + metrics.get("loss_pitch", 0.0)
                       + model.config.code_loss * metrics.get("loss_code", 0.0))
    metrics |= {f"accuracy_level{level + 1}": right / n for level, (right, n) in hits.items()}
    metrics["accuracy"] = metrics["accuracy_level1"]
    return metrics


def _frame_losses(out: StageOutput, frames: int) -> torch.Tensor:
    """`[B, frames]`: each frame's cross-entropy summed over the AR's levels (0 where nothing is predicted)."""
    batch, vocabulary = out.targets.shape[0], out.logits.shape[-1]
    targets = out.targets.reshape(batch, -1, out.targets.shape[-1])[:, :frames]  # [B, T, k]: groups unrolled
    logits = out.logits.reshape(batch, -1, targets.shape[-1], vocabulary)[:, :frames].float()
    losses = F.cross_entropy(logits.reshape(-1, vocabulary), targets.reshape(-1), ignore_index=IGNORE, reduction="none")
    return losses.view(targets.shape).sum(-1)


def loss_per_frame(metrics: list[dict[str, float]]) -> float:
    """The sum of every level's held-out loss over the stages' metrics: nats per frame of the whole model."""
    return sum(value for m in metrics for key, value in m.items() if key.startswith("loss_level"))


def validate_stages(stages: list[str | Path], data: str | Path, max_utterances: int | None = None,
                    device: str = "cpu") -> list[dict[str, float]]:
    """`heldout_metrics` of each saved stage (RUN/model folders) on one tokenised corpus."""
    corpus = TokenizedCorpus(data)
    results = []
    for path in stages:
        model = Stage.from_pretrained(path, device)
        results.append(heldout_metrics(model, corpus, max_utterances=max_utterances, progress=True))
    return results
