"""Is a person's voice lost in reading 3 s of it, or in rendering it? The same sentences from a longer prompt.

A probe, not an option. For each speaker of a zero-shot benchmark's JSON (`benchmarks/zero_shot.py
--out`), its 3 s prompt is grown to at least SECONDS with more of the speaker's clips from MANIFEST
in the prompt's language (neither a target nor the prompt; 0.15 s of silence between them, their
transcripts joined). Every target sentence is spoken by the bundled model, at its defaults, from
the 3 s prompt and from the longer one, and scored by SIM to the 3 s prompt (what the benchmark
scores) and to the target's own recording (which neither prompt holds).

    python recipes/prompt_length_probe.py BENCHMARK.json runs/mix1/valid_human.jsonl [SECONDS]
"""

import json
import sys
from collections import defaultdict

import numpy as np
import torch

from valle.audio import load_audio
from valle.data.manifest import Utterance, read_manifest
from valle.infer import VallE
from valle.speaker import SpeakerEncoder, cosine

GAP = 0.15  # seconds of silence between the clips of a longer prompt


def longer_prompt(samples: np.ndarray, prompt: Utterance, others: list[Utterance], seconds: float,
                  rate: int) -> tuple[np.ndarray, str]:
    """The prompt's `samples` and transcript, followed by `others`' until they last `seconds`."""
    pieces, texts = [samples], [prompt.text]
    for clip in others:
        if sum(len(p) for p in pieces) >= seconds * rate:
            break
        pieces += [np.zeros(int(GAP * rate), dtype=np.float32), load_audio(clip.audio, rate)]
        texts.append(clip.text)
    return np.concatenate(pieces), " ".join(texts)


def main(benchmark: str, manifest: str, seconds: float = 9.0) -> None:
    torch.set_num_threads(1)
    utterances = json.load(open(benchmark))["utterances"]
    rows = read_manifest(manifest)
    by_audio, by_id = {str(r.audio): r for r in rows}, {r.id: r for r in rows}
    valle, encoder = VallE.from_pretrained("default"), SpeakerEncoder()
    rate = valle.codec.sample_rate
    targets = {u["id"] for u in utterances}
    scores: dict[str, list[dict[str, float]]] = defaultdict(list)
    for speaker in sorted({u["speaker"] for u in utterances}):
        spoken = [u for u in utterances if u["speaker"] == speaker]
        prompt = by_audio[spoken[0]["prompt"]]
        others = [r for r in rows if r.speaker == speaker and r.language == prompt.language
                  and r.id not in targets and r.audio != prompt.audio]
        short = load_audio(prompt.audio, rate)
        long, long_text = longer_prompt(short, prompt, others, seconds, rate)
        voice = encoder.embed(short, rate)
        for u in spoken:
            truth = encoder.embed(load_audio(by_id[u["id"]].audio, rate), rate)
            row = {"longer prompt, s": len(long) / rate, "recording, to the prompt": cosine(truth, voice)}
            for name, samples, text in (("3 s", short, prompt.text), ("the longer", long, long_text)):
                out = encoder.embed(valle.synthesize(u["text"], samples, text, language=u["language"]).samples, rate)
                row[f"from {name}, to the prompt"] = cosine(out, voice)
                row[f"from {name}, to the recording"] = cosine(out, truth)
            scores[speaker].append(row)
    every = [row for rows_ in scores.values() for row in rows_]
    columns = list(every[0])
    print("| speaker | " + " | ".join(columns) + " |\n|---|" + "---:|" * len(columns))
    for speaker, rows_ in [*scores.items(), ("all", every)]:
        print(f"| {speaker} | " + " | ".join(f"{np.mean([r[c] for r in rows_]):.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:]))
