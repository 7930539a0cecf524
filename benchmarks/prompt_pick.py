"""Does the window `valle prompt pick` chooses from a long recording clone the voice better than any few seconds of it?

Long recordings are made from the synthetic corpus's held-out speakers (`--split test`): two
of a speaker's utterances, and between and around them what real long recordings hold and a
prompt should not: another speaker's utterance, babble (six other talkers), a melody, and
silence, in a random order, each stretch at the speaker's level. From each recording the
model speaks another sentence of the speaker twice, with the same seed: prompted by the
window `pick_window` chooses, and by a window of the same length at a random place. Both
prompts are transcribed by the model's recogniser, as a user's would be. The output's SIM
is its cosine to the speaker's voice: the mean speaker embedding of three recordings of the
speaker that are in neither the long recording nor the text.

Reported: how often each window is refused (no words recognised in it, as a user's would be),
the mean SIM of each where both spoke, their paired difference with a 95 % bootstrap interval,
and the share of outputs identified as the speaker among the split's speakers. Targets: the
picked window's SIM above the random window's (the interval of the difference above zero), and
the picked window never refused.

    python benchmarks/prompt_pick.py --n 20 --threads 2
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from prompt_check import RATE, Source, audio, babble, music  # noqa: E402
from targets import report  # noqa: E402

from valle.audio import trim_silence  # noqa: E402
from valle.data.manifest import Utterance, read_manifest  # noqa: E402
from valle.errors import TextError  # noqa: E402
from valle.eval.compare import paired_interval  # noqa: E402
from valle.infer import VallE  # noqa: E402
from valle.infer.prompt_pick import pick_window  # noqa: E402
from valle.speaker import SpeakerEncoder, cosine  # noqa: E402


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def long_recording(own: list[Utterance], other: Utterance, talkers: list[Utterance], rng: np.random.Generator) -> np.ndarray:
    """Two of the speaker's utterances among another speaker's, babble, a melody and silence, in a random order."""
    speech = [trim_silence(audio(u), RATE) for u in own]
    level = rms(np.concatenate(speech))
    source = Source(own[0], talkers, None, rng)  # what babble reads: the other talkers and the random state
    noise = [trim_silence(audio(other), RATE), babble(source, int(2.5 * RATE)), music(int(2.5 * RATE), rng)]
    pieces = speech + [x * level / rms(x) for x in noise] + [np.zeros(RATE)]
    gap = np.zeros(int(0.3 * RATE))
    order = rng.permutation(len(pieces))
    recording = np.concatenate([np.concatenate([pieces[i], gap]) for i in order])
    return (recording * min(1.0, 0.9 / np.abs(recording).max())).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="the bundled model's name or a model folder")
    parser.add_argument("--corpus", type=Path, default=Path("runs/corpus10h"), help="a synthetic corpus folder")
    parser.add_argument("--split", default="test", choices=["test", "valid"])
    parser.add_argument("--n", type=int, default=20, help="long recordings (speakers in turn)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/prompt_pick.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = read_manifest(args.corpus / f"{args.split}.jsonl")
    by_speaker: dict[str, list[Utterance]] = {}
    for u in rows:
        if 2.0 <= u.duration <= 8.0:
            by_speaker.setdefault(u.speaker, []).append(u)
    speakers = sorted(s for s, us in by_speaker.items() if len(us) >= 6)
    valle, encoder, rng = VallE.from_pretrained(args.model), SpeakerEncoder(), np.random.default_rng(args.seed)
    voices = {s: np.mean([encoder.embed(audio(u), RATE) for u in by_speaker[s][-3:]], axis=0) for s in speakers}
    results = []
    for i in tqdm(range(args.n), desc="recordings", unit="rec"):
        speaker = speakers[i % len(speakers)]
        own = [by_speaker[speaker][j] for j in rng.choice(len(by_speaker[speaker]) - 4, 3, replace=False)]
        strangers = [u for u in rows if u.speaker != speaker]
        picks = rng.choice(len(strangers), 7, replace=False)
        recording = long_recording(own[:2], strangers[picks[0]], [strangers[j] for j in picks[1:]], rng)
        picked = pick_window(recording, RATE)
        length = round(picked.seconds * RATE)
        start = int(rng.integers(0, len(recording) - length + 1))
        windows = {"picked": picked.cut(recording, RATE), "random": recording[start:start + length]}
        row = {"speaker": speaker, "text": own[2].text, "seconds": len(recording) / RATE, "pick": picked.to_dict(),
               "random_start": start / RATE}
        for name, window in windows.items():
            try:
                output = valle.synthesize(own[2].text, window, seed=args.seed + i).samples
            except TextError:  # no words recognised in the window: a user would be refused too
                row[name] = None
                continue
            embedding = encoder.embed(output, valle.codec.sample_rate)
            sims = {s: cosine(embedding, voice) for s, voice in voices.items()}
            row[name] = {"sim": sims[speaker], "identified": max(sims, key=sims.get) == speaker}
        results.append(row)

    both = [r for r in results if r["picked"] is not None and r["random"] is not None]
    picked_sim = np.array([r["picked"]["sim"] for r in both])
    random_sim = np.array([r["random"]["sim"] for r in both])
    low, high = paired_interval(picked_sim - random_sim, np.random.default_rng(args.seed)) if both else (float("nan"),) * 2
    print("\n| prompt | refused (no words heard in it) | SIM(output, the speaker's voice) | identified |\n|---|---:|---:|---:|")
    for name, key, sims in (("picked window", "picked", picked_sim), ("random window of the same length", "random", random_sim)):
        refused = sum(r[key] is None for r in results)
        identified = np.mean([r[key]["identified"] for r in results if r[key] is not None])
        print(f"| {name} | {refused} of {len(results)} | {sims.mean():.3f} | {identified:.1%} |")
    print(f"\npicked - random, on the {len(both)} recordings where both spoke: {np.mean(picked_sim - random_sim):+.3f} "
          f"(95 % interval {low:+.3f} to {high:+.3f}); {args.n} recordings of "
          f"{np.mean([r['seconds'] for r in results]):.1f} s on average, {len(speakers)} speakers of {args.corpus} "
          f"({args.split}), model {args.model}")
    checks = {"picked window's SIM above the random window's (95 % interval above 0)": low > 0,
              "the picked window is never refused": all(r["picked"] is not None for r in results)}
    return report(checks, {"model": args.model, "n": args.n, "picked_sim": float(picked_sim.mean()),
                           "random_sim": float(random_sim.mean()), "difference_interval": [low, high],
                           "recordings": results}, args.out)


if __name__ == "__main__":
    sys.exit(main())
