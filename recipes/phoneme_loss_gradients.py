"""How hard does the phoneme classifier's loss pull on a frame stage, and through which codec levels?

On 12 validation utterances, a frame stage's training losses and the phoneme loss
(`valle.train.phoneme_teacher`, the shipped aligner reading the stage's latents as soft codes) are
differentiated with respect to the stage's weights: the norm of each gradient, their cosine, and the
phoneme loss's gradient when it reaches the latent through only the first 1, 2, 4 or all 8 levels.
The weight of the loss in a training config (`phoneme_loss`) scales the second norm against the first.
Then, for each tokenised folder given after the stage, the loss on the recordings' own latents of
16 of its utterances: how well the classifier reads each part of a training corpus at all.

    python recipes/phoneme_loss_gradients.py runs/frames_contour_codes_scratch_at8000/latest \
        runs/tokens/valid runs/tokens/train38h runs/tokens/mix1_human_train runs/tokens/synth_de_train \
        runs/tokens/synth_ru_train                                      # 1 thread, a minute
"""

import sys

import torch

from valle.data.shards import open_corpus
from valle.model.frames import FrameModel, voice_slices
from valle.model.stage import Stage
from valle.train.batching import collate, collate_alignments, collate_pitch, phoneme_languages
from valle.train.phoneme_teacher import PhonemeTeacher


def norm(gradients: tuple) -> float:
    return float(torch.sqrt(sum((g ** 2).sum() for g in gradients if g is not None)))


def main() -> None:
    torch.set_num_threads(1)
    corpus = open_corpus(["runs/tokens/valid"])
    stage = Stage.from_pretrained(sys.argv[1]).train()
    assert isinstance(stage, FrameModel)
    items = [corpus[i] for i in range(0, len(corpus), len(corpus) // 12)][:12]
    phonemes, phoneme_lens, codes, code_lens = collate(items)
    alignment = collate_alignments(items, stage, codes.shape[2])
    pitch = collate_pitch(items, stage, codes.shape[2])
    prompt, prompt_lens, prompt_pitch = voice_slices(codes, code_lens, 75, torch.Generator().manual_seed(0), pitch)
    out = stage(phonemes, phoneme_lens, codes, code_lens, alignment, prompt, prompt_lens,
                phoneme_languages(items, stage, phonemes.shape[1]), pitch, prompt_pitch)
    weights = [p for p in stage.parameters() if p.requires_grad]
    own = torch.autograd.grad(out.loss, weights, retain_graph=True, allow_unused=True)
    print(f"{int(code_lens.sum())} frames; the stage's own loss {out.loss.item():.3f}, gradient norm {norm(own):.2f}")
    for levels in (1, 2, 4, None):
        teacher = PhonemeTeacher.for_corpus(corpus, levels=levels)
        loss = teacher.loss(stage, out.latent, phonemes, alignment, code_lens)
        taught = torch.autograd.grad(loss, weights, retain_graph=True, allow_unused=True)
        cosine = sum(float((a * b).sum()) for a, b in zip(own, taught) if a is not None and b is not None)
        print(f"phoneme loss {loss.item():.3f} through levels 1-{levels or stage.config.n_codebooks}: gradient norm "
              f"{norm(taught):.2f}, cosine with the stage's own {cosine / norm(own) / norm(taught):+.3f}")
    for folder in sys.argv[2:]:
        part = open_corpus([folder])
        items = [part[i] for i in range(0, len(part), max(1, len(part) // 16))][:16]
        phonemes, _, codes, code_lens = collate(items)
        with torch.no_grad():
            loss = PhonemeTeacher.for_corpus(part).loss(stage, stage.latents(codes), phonemes,
                                                        collate_alignments(items, stage, codes.shape[2]), code_lens)
        print(f"{folder}: phoneme loss on the recordings' own latents {loss.item():.3f}")


if __name__ == "__main__":
    main()
