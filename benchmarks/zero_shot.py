"""Zero-shot cloning of unseen speakers, scored as in the paper (cross-sentence setting).

The synthetic corpus's held-out test speakers, through `valle eval`'s protocol: each
test utterance of 4-10 s is spoken from a prompt that is another recording of the same
speaker (the whole one nearest 3 s, so that its transcript matches), and scored beside
the speaker's real recording of the same text and that recording through the model's codec
and back (codec resynthesis: what any model of the codec's codes can at best keep):
- WER by the judge `--asr` (default: Whisper tiny.en when installed, else PocketSphinx), over every
  voice and over the flite voices alone; the target is judged over every voice, or over the flite
  voices with PocketSphinx, which cannot read espeak-ng's;
- SIM(output, prompt) and SIM(ground truth, prompt) with Resemblyzer;
- speaker identification: is the output nearest its own speaker's prompt among all test speakers';
- pitch: how far the median F0 is from the prompt's, in semitones (an octave off is 12), median
  over utterances, and the same for the real recordings;
- length against the real recording (median ratio), beside WER: outputs that stop early lower
  WER by losing words, which Whisper would otherwise make up from babble;
- real-time factor of synthesis on this machine (watermarking included);
- per voice, WER and SIM of the three systems: a voice whose recordings the judge hears badly
  (ground truth WER) loses words when rendered closely, and this tells it from a rendering that loses them.
Beside the JSON of every utterance (`--out`) it draws them (`.png`): SIM per utterance, and each
output's median F0 against its prompt's, where a voice an octave off stands out.
Targets: SIM within 0.05 of ground truth, WER within 10 points, identification >= 80 %, RTF <= 0.5.
`--manifest` scores any held-out speakers instead (real people, several languages: each
utterance is spoken in its own language, and WER, by an English judge, counts English ones only).
`--engines` scores voices of two engines that no corpus the project trains on uses, SVOX Pico's
and Piper's (`valle[engines]`): voices an English judge reads well (its WER on their recordings
is near 9 %, against about 42 % on the espeak-ng voices that most test speakers are), from a
small corpus built once, the same for every run (seed 7), every split of it held out.

    python benchmarks/zero_shot.py --corpus runs/corpus10h --n 60
    python benchmarks/zero_shot.py --manifest runs/mix1/valid_human.jsonl --n 30
    python benchmarks/zero_shot.py --engines --n 60
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from targets import report

from valle.asr import PocketSphinx, load_recognizer, words_heard
from valle.data.manifest import read_manifest, write_manifest
from valle.data.synthetic import build_synthetic_corpus
from valle.data.synthetic.corpus import SPLITS
from valle.eval.evaluate import SYSTEMS, Scorers, by_speaker, corpus_wer, evaluate, summarize
from valle.eval.protocol import EvalConfig, plan
from valle.eval.report import plot_scores, speaker_table
from valle.infer import VallE
from valle.model.sampling import NAR_DECODINGS
from valle.speaker import SpeakerEncoder
from valle.text.normalize import is_english


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="the bundled model's name or a model folder")
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"))
    parser.add_argument("--hours", type=float, default=10.0, help="size of the corpus to build (seed 0) if it is absent")
    parser.add_argument("--split", default="test", help="held-out speakers to clone: test, or valid to choose settings")
    parser.add_argument("--manifest", type=Path, help="held-out speakers from this manifest instead of the corpus's split")
    parser.add_argument("--engines", type=Path, nargs="?", const=Path("runs/unseen_engines"),
                        help="clone the Pico and Piper voices of this corpus instead, built if absent (default: %(const)s)")
    parser.add_argument("--n", type=int, default=60, help="test utterances to synthesise (spread over the speakers)")
    # Sampling: the model's own (saved with it) unless an option says otherwise.
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--upper-temperature", type=float, help="temperature of the AR's levels above the first")
    parser.add_argument("--nar-decoding", choices=NAR_DECODINGS)
    parser.add_argument("--guidance", type=float, help="classifier-free guidance on the text (1: none)")
    parser.add_argument("--prompt-guidance", type=float, help="classifier-free guidance on the voice prompt (1: none)")
    parser.add_argument("--variance", type=float, help="a frame stage's spread over time toward the prompt's (0: none)")
    parser.add_argument("--rate", type=float, help="a frame stage's speaking rate toward the prompt's (0: none)")
    parser.add_argument("--speed", type=float, help="how many times as fast as that a frame stage speaks")
    parser.add_argument("--voice-feedback", type=float, help="a frame stage's second rendering, past the prompt's voice")
    parser.add_argument("--prompt-map", type=float, help="a frame stage's linear map toward the prompt (0: none)")
    parser.add_argument("--prompt-neighbours", type=float,
                        help="a frame stage's share of the nearest prompt frames' residual (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto", help="of the AR and NAR weights, as for `valle synthesize --dtype`")
    parser.add_argument("--asr", default="auto", help="the WER judge, as for `valle eval --asr` (default: auto)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zero_shot.json"))
    args = parser.parse_args(argv)

    if args.engines:
        args.manifest = unseen_engine_voices(args.engines)
    elif args.manifest is None and not (args.corpus / "speakers.json").exists():
        print(build_synthetic_corpus(args.corpus, hours=args.hours, seed=0))
    torch.set_num_threads(args.threads)
    valle = VallE.from_pretrained(args.model, dtype=args.dtype)
    dtype = str(next(valle.lead.parameters()).dtype).removeprefix("torch.")
    manifest = args.manifest or args.corpus / f"{args.split}.jsonl"
    items = plan(read_manifest(manifest), EvalConfig(modes=("cross-sentence",), n=args.n, seed=args.seed))
    scorers = Scorers(load_recognizer(args.asr, threads=args.threads), SpeakerEncoder())
    sampling = valle.sampling.updated(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                      upper_temperature=args.upper_temperature, nar_decoding=args.nar_decoding,
                                      guidance=args.guidance, prompt_guidance=args.prompt_guidance,
                                      variance=args.variance, rate=args.rate, speed=args.speed,
                                      voice_feedback=args.voice_feedback, prompt_map=args.prompt_map,
                                      prompt_neighbours=args.prompt_neighbours)
    records = evaluate(valle, items, scorers, sampling, seed=args.seed)
    truth, resynthesis, model = summarize(records)
    flite = [r for r in records if r["speaker"].startswith("fl")]
    english = [r for r in records if is_english(r["language"])]  # what an English judge can read
    judged = flite if isinstance(scorers.asr, PocketSphinx) else english
    wer = {system: _wer(judged, system) for system in SYSTEMS}
    wer_english = {system: _wer(english, system) for system in SYSTEMS}
    wer_flite = {system: _wer(flite, system) for system in SYSTEMS}
    heard = {system: _heard(english, system) for system in SYSTEMS}
    chance = {system: _heard(english, system, shift=1) for system in SYSTEMS}
    summary = {"model": str(args.model), "dtype": dtype, "split": str(manifest), "sampling": vars(sampling),
               "utterances": len(records), "speakers": len({r["speaker"] for r in records}),
               "asr": scorers.asr.name, "wer_voices": "flite" if judged is flite else f"{len(english)} English",
               "wer_utterances": len(judged), "wer_output": wer["output"], "wer_truth": wer["truth"],
               "wer_flite_output": wer_flite["output"], "wer_flite_truth": wer_flite["truth"],
               "words_heard_output": heard["output"], "words_heard_truth": heard["truth"],
               "words_heard_by_chance_output": chance["output"], "words_heard_by_chance_truth": chance["truth"],
               "sim_output": model["sim"], "sim_truth": truth["sim"], "identification": model["identification"],
               "identification_truth": truth["identification"], "rtf": model["rtf"],
               "wer_resynthesis": wer["resynthesis"], "wer_flite_resynthesis": wer_flite["resynthesis"],
               "sim_resynthesis": resynthesis["sim"], "identification_resynthesis": resynthesis["identification"],
               "pitch_off_output": model["pitch_off"], "pitch_off_truth": truth["pitch_off"],
               "length_ratio": _length_ratio(records),
               "prompt_seconds": [min(r["prompt_seconds"] for r in records), max(r["prompt_seconds"] for r in records)]}
    checks = {
        "SIM within 0.05 of ground truth": summary["sim_truth"] - summary["sim_output"] <= 0.05,
        "WER within 10 points of ground truth": wer["output"] is not None and wer["output"] - wer["truth"] <= 0.10,
        "identification >= 80 %": summary["identification"] >= 0.80,
        "RTF <= 0.5": summary["rtf"] <= 0.5,
    }
    print(f"\n| system | WER by {scorers.asr.name}, English voices | WER, flite voices | words heard (by chance), English voices "
          "| SIM(·, prompt) | speaker identification | pitch off the prompt's | length / ground truth | RTF |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def percent(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    def semitones(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.1f} st"

    for name, system, scores, length, rtf in (("ground truth", "truth", truth, "1", ""),
                                              ("codec resynthesis", "resynthesis", resynthesis, "1", ""),
                                              (args.model, "output", model, f"{summary['length_ratio']:.2f}", f"{model['rtf']:.2f}")):
        print(f"| {name} | {percent(wer_english[system])} | {percent(wer_flite[system])} | {percent(heard[system])} "
              f"({percent(chance[system])}) | {scores['sim']:.3f} | {percent(scores['identification'])} | "
              f"{semitones(scores['pitch_off'])} | {length} | {rtf} |")
    low, high = summary["prompt_seconds"]
    print(f"\n{len(records)} utterances of {summary['speakers']} unseen speakers ({len(flite)} flite), prompts of "
          f"{low:.1f}-{high:.1f} s; WER target judged on {summary['wer_voices']} voices; "
          f"{torch.get_num_threads()} CPU threads, {dtype} weights")
    speakers = by_speaker(records)
    print(f"\n{speaker_table(speakers, judged={r['language'] for r in english})}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure = plot_scores(records, args.out.with_suffix(".png"))
    print(f"wrote {figure}")
    return report(checks, {"summary": summary, "speakers": speakers, "utterances": records}, args.out)


UNSEEN_ENGINES = ("pico", "piper")
ENGINES_CORPUS = {"hours": 0.4, "seed": 7, "n_speakers": 16, "pico_share": 0.4, "piper_share": 0.4}  # 6 voices of each


def unseen_engine_voices(folder: Path) -> Path:
    """The manifest of every Pico and Piper speaker of the corpus in `folder` (built with `ENGINES_CORPUS` if absent):
    all its splits, since no corpus the project trains on has a voice of these engines."""
    if not (folder / "speakers.json").exists():
        print(build_synthetic_corpus(folder, **ENGINES_CORPUS))
    voices = json.loads((folder / "speakers.json").read_text())["splits"]
    speakers = {voice["speaker"] for split in voices.values() for voice in split if voice["engine"] in UNSEEN_ENGINES}
    manifest = folder / "pico_piper.jsonl"
    write_manifest([row for split in SPLITS for row in read_manifest(folder / f"{split}.jsonl") if row.speaker in speakers],
                   manifest)
    return manifest


def _length_ratio(records: list[dict]) -> float:
    """Median of output length over the recording's length, for the same words: a WER that falls with outputs
    that stop early has lost words, not found them (recipes/tournament.md)."""
    return float(np.median([r["output_seconds"] / r["truth_seconds"] for r in records]))


def _heard(records: list[dict], system: str, shift: int = 0) -> float | None:
    """Words heard of `system` over `records` (None when there are none); with `shift`, each transcript against the
    text of the utterance `shift` places on: what a recogniser's guesses match by chance."""
    texts = [r[system]["text"] for r in records]
    texts = texts[shift:] + texts[:shift]
    return words_heard(texts, [r[system]["hypothesis"] for r in records]) if records else None


def _wer(records: list[dict], system: str) -> float | None:
    """Corpus WER of `system` ("output" or "truth") over `records`; None when there are none."""
    return corpus_wer([r[system] for r in records]) if records else None


if __name__ == "__main__":
    sys.exit(main())
