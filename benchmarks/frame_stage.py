"""Where a frame stage loses words and voice: its codes at the true durations, and at its own.

Utterances of held-out speakers in a tokenised, aligned folder, each spoken from a prompt
that is the first 3 s of another utterance of the same speaker, decoded and scored beside
the real codes (WER by the Whisper judge, SIM(·, prompt) by Resemblyzer):
- the real codes;
- the frame stage's codes for the utterance's own alignment (every frame told its phoneme
  as the recording has it): what the stage makes of the phonemes, given their timing;
- the same with the levels above each of `--levels` taken from the real codes, and with the
  levels up to each of `--real-levels` taken from them: which levels cost the words and the voice;
- the frame stage's codes at the durations it predicts: all of synthesis;
- the same at the recording's length (its durations scaled by one factor): what of that is the
  speaking rate, and what the pattern of the durations;
- for a stage told the pitch, also its codes at the true durations and the true pitch (the
  folder's pitch track): what its own pitch costs.
Each latent's spread over time is moved toward the prompt's by `--variance`, as synthesis
does (`SamplingConfig.variance`). A stage told the pitch speaks at the register of its
prompt, measured on the folder's pitch tracks (`valle data pitch`), as synthesis measures
it on the prompt's recording.
A row at the true durations near the real codes is a stage that renders phonemes as well as
the codec keeps them; the last row is then as good as its durations.
`--manifest` takes the pairs of `benchmarks/zero_shot.py` instead (the folder tokenised from that
manifest): each speaker's whole recording nearest 3 s prompts its test utterances, so that the rows
stand beside that benchmark's codec resynthesis and model.

    python benchmarks/frame_stage.py --stage runs/frames/ema --tokens runs/tokens/valid --per-speaker 4
    python benchmarks/frame_stage.py --stage M/frames --codec M/codec --tokens runs/tokens/mix1_human_valid \
        --manifest runs/mix1/valid_human.jsonl --n 20
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from valle.asr import load_recognizer, word_error_rate
from valle.codec import load_codec
from valle.data.manifest import read_manifest
from valle.data.shards import TokenizedCorpus
from valle.eval.protocol import EvalConfig, plan
from valle.model import FrameModel, Stage
from valle.model.frames import pitch_level
from valle.model.sampling import SamplingConfig
from valle.speaker import SpeakerEncoder, cosine


def _levels(k: int) -> str:
    """"level 1", or "levels 1-k": a row's name for the levels up to `k`."""
    return f"level{'s 1-' if k > 1 else ' '}{k}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", type=Path, required=True, help="a frame stage folder (RUN/model, RUN/ema)")
    parser.add_argument("--tokens", type=Path, required=True, help="a tokenised folder aligned by `valle data align`")
    parser.add_argument("--per-speaker", type=int, default=4)
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--manifest", type=Path, help="the pairs of benchmarks/zero_shot.py on this manifest, "
                        "whose utterances the folder holds; the prompts whole")
    parser.add_argument("--n", type=int, default=20, help="with --manifest: that many test utterances")
    parser.add_argument("--codec", help="the codec that decodes (a folder, e.g. a model's own copy; default: the stage's)")
    parser.add_argument("--levels", type=int, nargs="+", default=[4],
                        help="a row for each: the stage's levels up to this one, the levels above from the real codes")
    parser.add_argument("--real-levels", type=int, nargs="*", default=[],
                        help="a row for each: the real codes' levels up to this one, the stage's above")
    parser.add_argument("--variance", type=float, default=SamplingConfig().variance,
                        help="the latents' spread over time toward the prompt's (default: as synthesis; 0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="JSON with every transcript")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    stage = Stage.from_pretrained(args.stage)
    if not isinstance(stage, FrameModel):
        parser.error(f"{args.stage} holds a {stage.kind} stage, not a frame stage")
    corpus = TokenizedCorpus(args.tokens)
    codec = load_codec(args.codec or stage.trained_on.codec.name)
    asr, speaker = load_recognizer("auto", threads=args.threads), SpeakerEncoder()
    sounding = ~torch.tensor(corpus.vocab.silent())
    prompt_frames = round(args.prompt_seconds * codec.frame_rate)
    if args.manifest:
        utterances = read_manifest(args.manifest)
        by_audio = {r.audio: r.id for r in utterances}
        pairs = [(item.target.id, by_audio[item.prompt_audio])
                 for item in plan(utterances, EvalConfig(modes=("cross-sentence",), n=args.n))]
        prompt_frames = None
    else:
        by_speaker: dict[str, list[str]] = {}
        for position in range(len(corpus)):
            utterance = corpus[position]
            by_speaker.setdefault(utterance.speaker, []).append(utterance.id)
        pairs = [(ids[i], ids[(i + 1) % len(ids)]) for ids in by_speaker.values()
                 for i in range(min(args.per_speaker, len(ids)))]
    mixed = {k: f"frame stage {_levels(k)}, true durations, levels above real" for k in args.levels}
    given = {k: f"real {_levels(k)}, frame stage above, true durations" for k in args.real_levels}
    rows = (["real codes", "frame stage, true durations", *mixed.values(), *given.values(), "frame stage, its own durations",
             "frame stage, its own durations at the recording's length"]
            + (["frame stage, true durations and pitch"] if stage.config.pitch else []))
    heard: dict[str, list[str]] = {row: [] for row in rows}
    similarity: dict[str, list[float]] = {row: [] for row in rows}
    lengths, references, speakers = [], [], set()

    def wav(codes: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return codec.decode(codes[None])[0].float().numpy()

    for id_, prompt_id in tqdm(pairs, desc="decoding", unit="utt"):
        u, prompt = corpus[id_], corpus[prompt_id].codes[:, :prompt_frames]
        if u.alignment is None:
            parser.error(f"{args.tokens} is not aligned: run `valle data align {args.tokens} --aligner A` first")
        register = None
        if stage.config.pitch:
            if corpus[prompt_id].pitch is None:
                parser.error(f"{args.stage} is told the pitch: run `valle data pitch {args.tokens}` first")
            register = pitch_level(corpus[prompt_id].pitch[:prompt_frames])
        true_path = u.alignment.clamp(min=0)
        forced = stage.render(u.phonemes, true_path, prompt, prompt_pitch=register, variance=args.variance)
        own = stage.generate(u.phonemes, prompt, sounding[u.phonemes], prompt_pitch=register, variance=args.variance)
        length = own.shape[1] / u.codes.shape[1]
        decoded = {rows[0]: u.codes, rows[1]: forced, **{row: torch.cat([forced[:k], u.codes[k:]]) for k, row in mixed.items()},
                   **{row: torch.cat([u.codes[:k], forced[k:]]) for k, row in given.items()},
                   "frame stage, its own durations": own,
                   "frame stage, its own durations at the recording's length": stage.generate(
                       u.phonemes, prompt, sounding[u.phonemes], pace=length,
                       prompt_pitch=register, variance=args.variance)}
        if stage.config.pitch:
            decoded[rows[-1]] = stage.render(u.phonemes, true_path, prompt, variance=args.variance, pitch=u.pitch)
        voice = speaker.embed(wav(prompt), codec.sample_rate)
        for row, codes in decoded.items():
            audio = wav(codes)
            heard[row].append(asr.transcribe(audio, codec.sample_rate))
            similarity[row].append(cosine(speaker.embed(audio, codec.sample_rate), voice))
        lengths.append(length)
        references.append(u.text)
        speakers.add(u.speaker)

    prompts = ("each speaker's whole recording nearest 3 s, as benchmarks/zero_shot.py" if args.manifest
               else f"{args.prompt_seconds:g} s from another utterance of the speaker")
    print(f"\n{args.stage} on {len(pairs)} utterances of {len(speakers)} speakers in "
          f"{args.tokens}, prompts of {prompts}; judge {asr.name}\n")
    print("| decoded | WER | SIM(·, prompt) |\n|---|---:|---:|")
    results = {}
    for row in rows:
        results[row] = {"wer": word_error_rate(references, heard[row]), "sim": float(np.mean(similarity[row]))}
        print(f"| {row} | {100 * results[row]['wer']:.1f} % | {results[row]['sim']:.3f} |")
    print(f"\nlength at its own durations / the recording's: median {np.median(lengths):.2f} "
          f"(range {min(lengths):.2f}-{max(lengths):.2f})")
    if args.out:
        args.out.write_text(json.dumps({"results": results, "references": references, "heard": heard,
                                        "lengths": lengths}, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
