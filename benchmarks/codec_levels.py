"""Which codebook levels carry the words? Resynthesis from the first K levels only, scored by ear.

Held-out utterances of the synthetic corpus are encoded, decoded from their first K
levels (the rest left out, as the codec's quantiser dropout trained it to), and scored:
WER by the Whisper judge (every voice) and SIM(resynthesis, original). A stage that
predicts levels 1..K can at best reach that row's figures with perfect predictions, so
the table says how many levels the stage that knows the alignment must predict.

With `--nar STAGE`, a trained NAR stage fills in the levels above its AR's from the true
lower ones (prompt: the first 3 s of another utterance of the same speaker, as in
zero-shot synthesis), choosing codes greedily and nearest in expectation to the codec's
vectors (`SamplingConfig.nar_decoding`); its rows say whether those levels improve on
leaving them out.
Every row also gives the log-mel distance to the original, which hears detail that WER
and SIM miss.

    python benchmarks/codec_levels.py --corpus runs/corpus10h --split test --n 60
    python benchmarks/codec_levels.py --split valid --n 30 --nar runs/content4_nar/latest --tokens runs/tokens/valid
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from valle.asr import load_recognizer, word_error_rate
from valle.audio import load_audio
from valle.codec import load_codec
from valle.codec.spectral import LogMel
from valle.data.manifest import read_manifest
from valle.data.shards import TokenizedCorpus
from valle.model.nar import NARModel
from valle.model.sampling import NearestInExpectation
from valle.speaker import ENCODER_RATE, SpeakerEncoder, cosine


class NARFill:
    """A NAR stage that fills in the upper levels of true lower ones, prompted by another utterance of the speaker."""

    def __init__(self, stage: Path, tokens: Path, frame_rate: float, choose: NearestInExpectation | None,
                 prompt_seconds: float = 3.0) -> None:
        self.model = NARModel.from_pretrained(stage)
        self.corpus = TokenizedCorpus(tokens)
        self.prompt_frames = round(prompt_seconds * frame_rate)
        self.choose = choose
        self.name = f"1-{self.model.first_level} + NAR, {'greedy' if choose is None else 'nearest'}"

    def __call__(self, id_: str, codes: torch.Tensor) -> torch.Tensor:
        utterance = self.corpus[id_]
        others = [i for i in self.corpus.ids if i != id_ and i.split("_")[0] == utterance.speaker]
        prompt = self.corpus[others[0]].codes[:, :self.prompt_frames]
        return self.model.generate(utterance.phonemes, prompt, codes[0, :self.model.first_level], choose=self.choose)[None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", default="compact")
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=60, help="utterances, spread evenly over the split")
    parser.add_argument("--asr", default="auto", help="the WER judge (see `valle eval --asr`)")
    parser.add_argument("--nar", type=Path, help="a trained NAR stage folder: add a row where it fills the upper levels")
    parser.add_argument("--tokens", type=Path, help="the split tokenised (phonemes and prompts for --nar)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/codec_levels.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    codec, judge, speaker = load_codec(args.codec), load_recognizer(args.asr), SpeakerEncoder()
    hop = round(codec.sample_rate / codec.frame_rate)
    log_mel = LogMel(codec.sample_rate, 4 * hop, hop, 80)
    rows = read_manifest(args.corpus / f"{args.split}.jsonl")
    rows = [rows[round(i * len(rows) / min(args.n, len(rows)))] for i in range(min(args.n, len(rows)))]
    systems = {("1" if k == 1 else f"1-{k}"): (lambda _, codes, k=k: codes[:, :k]) for k in range(1, codec.n_codebooks + 1)}
    if args.nar:
        if args.tokens is None:
            parser.error("--nar needs --tokens: the split tokenised, for the phonemes and the prompts")
        for choose in (None, NearestInExpectation(codec.codebooks())):
            fill = NARFill(args.nar, args.tokens, codec.frame_rate, choose)
            systems[fill.name] = fill
    hypotheses: dict[str, list[str]] = {name: [] for name in [*systems, "original"]}
    sims: dict[str, list[float]] = {name: [] for name in systems}
    distances: dict[str, list[float]] = {name: [] for name in systems}
    for row in tqdm(rows, desc="resynthesising", unit="utt"):
        original = load_audio(row.audio, codec.sample_rate)
        hypotheses["original"].append(judge.transcribe(original, codec.sample_rate))
        reference = speaker.embed(original, codec.sample_rate)
        whole = len(original) // hop * hop
        mel = log_mel(torch.from_numpy(original[:whole])[None])[0]
        with torch.inference_mode():
            codes = codec.encode(torch.from_numpy(original)[None])
            for name, levels_of in systems.items():
                resynth = codec.decode(levels_of(row.id, codes))[0, :len(original)]
                hypotheses[name].append(judge.transcribe(resynth.numpy(), codec.sample_rate))
                sims[name].append(cosine(reference, speaker.embed(resynth.numpy(), codec.sample_rate)))
                distances[name].append(float((log_mel(resynth[None, :whole])[0] - mel).abs().mean()))
    texts = [row.text for row in rows]
    table = [{"levels": name, "wer": word_error_rate(texts, hypotheses[name]), "sim": float(np.mean(sims[name])),
              "log_mel_l1": float(np.mean(distances[name]))} for name in systems]
    truth = word_error_rate(texts, hypotheses["original"])
    print(f"\n| levels kept | {' | '.join(systems)} |")
    print("|---|" + "---:|" * len(systems))
    print("| WER | " + " | ".join(f"{100 * r['wer']:.1f} %" for r in table) + " |")
    print("| SIM(resynth, original) | " + " | ".join(f"{r['sim']:.3f}" for r in table) + " |")
    print("| log-mel L1 to original | " + " | ".join(f"{r['log_mel_l1']:.3f}" for r in table) + " |")
    print(f"\n{len(rows)} {args.split} utterances of {len({r.speaker for r in rows})} held-out speakers; judge {judge.name}; "
          f"WER of the originals {100 * truth:.1f} %; SIM by Resemblyzer at {ENCODER_RATE} Hz")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"codec": args.codec, "split": args.split, "judge": judge.name, "utterances": len(rows),
                                    "nar": None if args.nar is None else str(args.nar), "wer_original": truth,
                                    "levels": table}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
