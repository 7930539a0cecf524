"""Where a trained model loses the words: teacher-forced against free-running, on the same utterances.

Utterances of a tokenised corpus are decoded and scored by ear (Whisper judge, WER), each
row keeping the utterance's first 3 s as they are (the prompt) and making the rest:
- the real codes;
- level 1 teacher-forced: the AR's likeliest level-1 code at every frame given the true
  past, every other level real: how well the AR knows the next code;
- levels 1..k teacher-forced, the levels above real: what the AR's own levels cost;
- levels 1..k teacher-forced: the AR's levels (level 1 likeliest, the levels above nearest
  in expectation), the NAR filling in the rest from them: the stages' codes with no drift;
- continuation: the first 3 s of the utterance as the prompt, the AR and NAR generate the
  rest from the text, sampled as `--temperature/--top-k/--top-p` say (default: the model's own sampling);
- for a stage with a phoneme pointer, the same continuation with the pointer moved on as the alignment says:
  the stage's own codes at the real pace, which tells a pace that skips phonemes from codes that drift.
A continuation far worse than its teacher-forced rows is a model that drifts off the text once
it runs on its own samples; a teacher-forced level 1 far worse than the real codes is one that
has not learnt the next code. Run it on training speakers (is it the model?) and held-out ones
(is it the voice?). A stage with a phoneme pointer needs an aligned folder (`valle data align`).

    python benchmarks/free_running.py --model runs/gpu1/model --tokens runs/tokens/train --speaker fl004 --n 8
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from valle.asr import load_recognizer, word_error_rate
from valle.data.shards import TokenizedCorpus, TokenizedUtterance
from valle.infer import VallE
from valle.model.ar import ADVANCE, MAX_ADVANCE
from valle.model.sampling import NearestInExpectation, Sampler, SamplingConfig


def teacher_forced(valle: VallE, near: NearestInExpectation, utterance: TokenizedUtterance) -> torch.Tensor:
    """`[k, T]`: the AR's codes for every frame given the true past (level 1 likeliest, the levels above nearest),
    and for a stage with a phoneme pointer the true phoneme of every frame."""
    ar, phonemes, codes = valle.ar, utterance.phonemes, utterance.codes
    k, v = ar.config.ar_levels, ar.config.codebook_size
    with torch.no_grad():
        out = ar(phonemes[None], torch.tensor([len(phonemes)]), codes[None], torch.tensor([codes.shape[1]]),
                 alignment=None if utterance.alignment is None else utterance.alignment[None])
    logits = out.logits.reshape(-1, k, v + 1)[:codes.shape[1], :, :v]  # groups unrolled into frames; EOS left out
    levels = [logits[:, 0].argmax(-1)] + [near(logits[:, level], level) for level in range(1, k)]
    return torch.stack(levels)


class AlignedPace:
    """A chooser that samples codes as `sampler` does but moves a phoneme pointer as `alignment` (each frame's
    phoneme) says, from frame `first` on, `group` frames a step: the stage's own codes at the real pace."""

    def __init__(self, sampler: Sampler, alignment: torch.Tensor, first: int, group: int) -> None:
        self.sampler, self.alignment, self.frame, self.group = sampler, alignment.tolist(), first, group

    def __call__(self, logits: torch.Tensor, history: list[int], level: int) -> int:
        if level != ADVANCE:
            return self.sampler(logits, history, level)
        now, self.frame = self.alignment[min(self.frame, len(self.alignment) - 1)], self.frame + self.group
        if self.frame >= len(self.alignment):  # the recording has ended: move past the text
            return MAX_ADVANCE
        return min(MAX_ADVANCE, max(0, self.alignment[self.frame] - now))


def continuation(valle: VallE, near: NearestInExpectation, sampling: SamplingConfig, utterance: TokenizedUtterance,
                 prompt_frames: int, seed: int, real_pace: bool = False) -> torch.Tensor:
    """`[K, T]`: the prompt's codes, then what the AR and NAR make of the rest of the text (a phoneme pointer
    starting at the phoneme that follows the prompt, where the folder is aligned; with `real_pace`, moved on as
    the alignment says rather than as the stage predicts)."""
    sampler = Sampler(sampling, seed=seed)
    phonemes, codes = utterance.phonemes, utterance.codes
    prompt = codes[:, :prompt_frames]
    start = 0 if utterance.alignment is None else int(utterance.alignment[min(prompt_frames, codes.shape[1] - 1)])
    if real_pace:
        sampler = AlignedPace(sampler, utterance.alignment, prompt_frames, valle.ar.config.group_size)
    lower = valle.ar.generate(phonemes, prompt, 2 * codes.shape[1], sampler, text_start=start)
    return torch.cat([prompt, valle.nar.generate(phonemes, prompt, lower, choose=near)], dim=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="paper", help="a bundled model's name or a model folder of AR and NAR stages")
    parser.add_argument("--tokens", type=Path, required=True, help="a folder written by `valle data tokenize`")
    parser.add_argument("--speaker", default="", help="only utterances whose id starts with this")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--temperature", type=float, help="of the continuation (default: the model's own sampling)")
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, help="JSON with every transcript")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    valle = VallE.from_pretrained(args.model)
    sampling = valle.sampling.updated(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    corpus = TokenizedCorpus(args.tokens)
    ids = [id_ for id_ in corpus.ids if id_.startswith(args.speaker)][:args.n]
    if not ids:
        print(f"no utterance id in {args.tokens} starts with {args.speaker!r}", file=sys.stderr)
        return 2
    asr = load_recognizer("auto", threads=args.threads)
    near = NearestInExpectation(valle.codec.codebooks())
    prompt_frames = round(args.prompt_seconds * valle.codec.frame_rate)
    k = valle.ar.config.ar_levels

    def hear(codes: torch.Tensor) -> str:
        return asr.transcribe(valle.codec.decode(codes[None])[0].float().numpy(), valle.codec.sample_rate)

    rows: dict[str, list[str]] = {"real codes": [], "level 1 teacher-forced": [],
                                  f"levels 1-{k} teacher-forced, levels above real": [],
                                  f"levels 1-{k} teacher-forced, NAR above": [], "continuation": []}
    paced = valle.ar.config.phoneme_pointer and corpus[ids[0]].alignment is not None
    if paced:
        rows["continuation, pointer at the real pace"] = []
    references = []
    for i, id_ in enumerate(tqdm(ids, desc="decoding", unit="utt")):
        utterance = corpus[id_]
        codes, phonemes = utterance.codes, utterance.phonemes
        references.append(utterance.text)
        forced = teacher_forced(valle, near, utterance)[:, prompt_frames:]  # every row keeps the real prompt
        level1 = codes.clone()
        level1[0, prompt_frames:] = forced[0]
        lower = codes.clone()
        lower[:k, prompt_frames:] = forced
        prompt = codes[:, :prompt_frames]
        upper = torch.cat([prompt, valle.nar.generate(phonemes, prompt, forced, choose=near)], dim=1)
        rows["real codes"].append(hear(codes))
        rows["level 1 teacher-forced"].append(hear(level1))
        rows[f"levels 1-{k} teacher-forced, levels above real"].append(hear(lower))
        rows[f"levels 1-{k} teacher-forced, NAR above"].append(hear(upper))
        rows["continuation"].append(hear(continuation(valle, near, sampling, utterance, prompt_frames, args.seed + i)))
        if paced:
            rows["continuation, pointer at the real pace"].append(
                hear(continuation(valle, near, sampling, utterance, prompt_frames, args.seed + i, real_pace=True)))

    print(f"{len(ids)} utterances of {args.tokens}{f' ({args.speaker}*)' if args.speaker else ''}, judge {asr.name}, "
          f"model {args.model}, continuation sampled at temperature {args.temperature}, top-k {args.top_k}, top-p {args.top_p}\n")
    print("| decoded | WER |\n|---|---:|")
    scores = {name: word_error_rate(references, hypotheses) for name, hypotheses in rows.items()}
    for name, wer in scores.items():
        print(f"| {name} | {wer * 100:.1f} % |")
    if args.out:
        args.out.write_text(json.dumps({"wer": scores, "ids": ids, "references": references, "hypotheses": rows}, indent=1))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
