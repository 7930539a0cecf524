"""How plainly does a model's speech say its phonemes, to a phoneme classifier rather than to Whisper?

Each model clones the test speakers as `benchmarks/zero_shot.py` does (the same 60 items, the same
seeds); its output is encoded by the codec again, and the shipped frame aligner
(`runs/aligner_frames`, trained on US-English labels) reads it: along the best monotonic path
through the text's phonemes, the mean log-probability of each frame's phoneme and the share of
frames whose most likely phoneme is that one. The recordings are read the same way. If a model's
frames are read less plainly than another's where Whisper hears fewer of its words, such a
classifier, frozen, can tell a stage in training which frames mispronounce (recipes/tournament.md).

A stage in training gives latents, not codes. `--soft` checks that the classifier reads them as well:
on 12 test recordings, the codec's latent is turned into soft codes level by level (a softmax over
the negative squared distances to each codebook, over its spread, as `FrameModel.code_cross_entropy`
scores codes, at the temperatures given), and the classifier reads the codes' embeddings so mixed.

    python recipes/aligner_clarity_probe.py default runs/m_scratch9000     # 1 thread, about a minute
    python recipes/aligner_clarity_probe.py --soft runs/m_scratch9000 1 0.3 0.1
"""

import sys

import numpy as np
import torch

from valle.audio import load_audio
from valle.codec.rvq import squared_distances
from valle.data.manifest import read_manifest
from valle.eval.protocol import EvalConfig, plan
from valle.infer import VallE
from valle.model.aligner import FrameAligner
from valle.text import PhonemeTokenizer


def clarity(aligner: FrameAligner, tokenizer: PhonemeTokenizer, codes: torch.Tensor, text: str,
            language: str) -> tuple[float, float]:
    """Mean log-probability of the aligned phoneme per frame, and the share of frames it is the most likely."""
    phonemes = torch.tensor(tokenizer(text, language))
    silent = torch.tensor(aligner.trained_on.vocab.silent())[phonemes]
    with torch.no_grad():
        log_probs = aligner(codes[None], torch.tensor([codes.shape[1]]))[0].float().log_softmax(-1)
    target = phonemes[aligner.path(phonemes, codes, silent)]
    return (float(log_probs[torch.arange(len(target)), target].mean()),
            float((log_probs.argmax(-1) == target).float().mean()))


def soft_reading(model: str, temperatures: list[float], aligner: FrameAligner, tokenizer: PhonemeTokenizer) -> None:
    valle = VallE.from_pretrained(model)
    stage = valle.frames.float()
    silent = torch.tensor(aligner.trained_on.vocab.silent())
    rows = read_manifest("runs/corpus10h/test.jsonl")[::40][:12]
    for temperature in temperatures:
        hard_right = soft_right = frames = 0
        for row in rows:
            with torch.no_grad():
                codes = valle._encode(load_audio(row.audio, valle.codec.sample_rate)).long()  # [K, T]
                phonemes = torch.tensor(tokenizer(row.text, row.language))
                target = phonemes[aligner.path(phonemes, codes, silent[phonemes])]
                lens = torch.tensor([codes.shape[1]])
                hard = aligner(codes[None], lens)[0]
                residual, mixed = stage.latents(codes[None])[0].float() / stage.latent_scale, 0
                for level, embedding in enumerate(aligner.embeddings):
                    book = stage.codebooks[level].float() / stage.latent_scale
                    weights = (-squared_distances(residual, book) / book.std() / temperature).softmax(-1)
                    mixed, residual = mixed + weights @ embedding.weight, residual - weights @ book
                soft = aligner.classify(mixed[None], lens)[0]
            hard_right += int((hard.argmax(-1) == target).sum())
            soft_right += int((soft.argmax(-1) == target).sum())
            frames += len(target)
        print(f"temperature {temperature:g}: frames read as their phoneme from hard codes {100 * hard_right / frames:.1f} %, "
              f"from soft codes {100 * soft_right / frames:.1f} % ({frames} frames)")


def main() -> None:
    torch.set_num_threads(1)
    aligner = FrameAligner.from_pretrained("runs/aligner_frames").eval()
    tokenizer = PhonemeTokenizer(aligner.trained_on.vocab)
    if sys.argv[1] == "--soft":
        soft_reading(sys.argv[2], [float(t) for t in sys.argv[3:]], aligner, tokenizer)
        return
    items = plan(read_manifest("runs/corpus10h/test.jsonl"), EvalConfig(modes=("cross-sentence",), n=60, seed=0))
    for n, name in enumerate(sys.argv[1:]):
        valle = VallE.from_pretrained(name)
        rate = valle.codec.sample_rate
        scores = {"recordings": [], name: []}
        for i, item in enumerate(items):
            spoken = item.spoken or item.target
            out = valle.synthesize(spoken.text, load_audio(item.prompt_audio, rate), item.prompt_text, None, i,
                                   language=spoken.language, prompt_language=item.prompt_language)
            with torch.no_grad():
                scores[name].append(clarity(aligner, tokenizer, valle._encode(out.samples), spoken.text, spoken.language))
                if n == 0:
                    truth = valle._encode(load_audio(item.target.audio, rate))
                    scores["recordings"].append(clarity(aligner, tokenizer, truth, spoken.text, spoken.language))
        for system, values in scores.items():
            if values:
                log_prob, accuracy = np.mean(values, axis=0)
                print(f"{system:>24}: log-probability {log_prob:.3f}, frames read as their phoneme {100 * accuracy:.1f} %")


if __name__ == "__main__":
    main()
