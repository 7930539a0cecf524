"""How plainly does a model's speech say its phonemes, to a phoneme classifier rather than to Whisper?

Each model clones the test speakers as `benchmarks/zero_shot.py` does (the same 60 items, the same
seeds); its output is encoded by the codec again, and the shipped frame aligner
(`runs/aligner_frames`, trained on US-English labels) reads it: along the best monotonic path
through the text's phonemes, the mean log-probability of each frame's phoneme and the share of
frames whose most likely phoneme is that one. The recordings are read the same way. If a model's
frames are read less plainly than another's where Whisper hears fewer of its words, such a
classifier, frozen, can tell a stage in training which frames mispronounce (recipes/tournament.md).

    python recipes/aligner_clarity_probe.py default runs/m_scratch9000     # 1 thread, about a minute
"""

import sys

import numpy as np
import torch

from valle.audio import load_audio
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


def main() -> None:
    torch.set_num_threads(1)
    aligner = FrameAligner.from_pretrained("runs/aligner_frames").eval()
    tokenizer = PhonemeTokenizer(aligner.trained_on.vocab)
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
