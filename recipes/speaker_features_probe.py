"""Do Whisper tiny.en's encoder states tell speakers apart, as a speaker encoder does?

A stage that has heard 148 speakers reads unheard voices through an encoder of its own; a pretrained
speaker encoder would read them better, but the only one that runs offline here, Resemblyzer, is
also the benchmark's judge of SIM. Whisper's encoder, trained on far more voices, would not be.
For up to 30 speakers of each set (10 clips of 2 s or more each, seed 0), each clip's encoder
states are pooled over its frames (mean and spread), every vector is centred on the mean of all,
and a clip is identified by the nearest centroid of the other half of each speaker's clips, by
cosine; Resemblyzer's d-vectors are scored the same way beside it, and so is the voice vector that
the bundled frame stage reads off the clip's first 3 s of codes, as it reads a prompt.

    python recipes/speaker_features_probe.py      # one thread, about three minutes
"""

import random
from collections import defaultdict

import numpy as np
import torch

from valle.asr import bundled_whisper
from valle.audio import load_audio
from valle.data.manifest import read_manifest
from valle.infer import VallE
from valle.speaker import load_speaker_embedder

SETS = {"synthetic test": ["runs/corpus10h/test.jsonl"],
        "human held-out": ["runs/mix1/valid_human.jsonl", "runs/mix1/test_human.jsonl"],
        "human train": ["runs/mix1/train_human.jsonl"]}


def clips_by_speaker(manifests: list[str], rng: random.Random) -> dict[str, list]:
    """Up to 10 clips of 2 s or more of each of up to 30 speakers that have 8 or more."""
    by = defaultdict(list)
    for manifest in manifests:
        for utterance in read_manifest(manifest):
            if utterance.duration is None or utterance.duration >= 2.0:
                by[utterance.speaker].append(utterance.audio)
    speakers = [s for s in by if len(by[s]) >= 8]
    rng.shuffle(speakers)
    return {s: rng.sample(by[s], min(10, len(by[s]))) for s in sorted(speakers[:30])}


def identification(vectors: dict[str, list[np.ndarray]]) -> tuple[float, float, float]:
    """Nearest-centroid accuracy over the second half of each speaker's clips, and the mean same- and
    cross-speaker cosine of a clip to a centroid."""
    mean = np.mean([v for vs in vectors.values() for v in vs], axis=0)
    unit = {s: [(v - mean) / np.linalg.norm(v - mean) for v in vs] for s, vs in vectors.items()}
    centroids = {s: np.mean(vs[: len(vs) // 2], axis=0) for s, vs in unit.items()}
    centroids = {s: c / np.linalg.norm(c) for s, c in centroids.items()}
    right, same, cross = [], [], []
    for s, vs in unit.items():
        for v in vs[len(vs) // 2:]:
            scores = {t: float(v @ c) for t, c in centroids.items()}
            right.append(max(scores, key=scores.get) == s)
            same.append(scores[s])
            cross += [x for t, x in scores.items() if t != s]
    return float(np.mean(right)), float(np.mean(same)), float(np.mean(cross))


def main() -> None:
    from faster_whisper import WhisperModel

    torch.set_num_threads(1)
    folder, _ = bundled_whisper()
    whisper = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)
    resemblyzer = load_speaker_embedder()
    bundled = VallE.from_pretrained("default")

    @torch.no_grad()
    def stage_voice(samples: np.ndarray) -> np.ndarray:
        codes = bundled.codec.encode(torch.from_numpy(samples[: 16000 * 3])[None])
        return bundled.frames.encode_voice(codes, torch.tensor([codes.shape[2]])).vector[0].numpy()

    def whisper_states(samples: np.ndarray) -> np.ndarray:
        features = whisper.feature_extractor(samples[: 16000 * 30])
        frames = features.shape[-1]
        features = np.pad(features, ((0, 0), (0, 3000 - frames)))  # Whisper reads 30 s windows
        states = np.array(whisper.encode(features)).reshape(1500, -1)[: max(1, frames // 2)]
        return np.concatenate([states.mean(0), states.std(0)])

    rng = random.Random(0)
    for name, manifests in SETS.items():
        clips = clips_by_speaker(manifests, rng)
        vectors = {"Resemblyzer": defaultdict(list), "Whisper tiny.en encoder": defaultdict(list),
                   "the bundled stage's voice vector": defaultdict(list)}
        for speaker, paths in clips.items():
            for path in paths:
                samples = load_audio(path, 16000)
                vectors["Resemblyzer"][speaker].append(np.asarray(resemblyzer.embed(samples, 16000)))
                vectors["Whisper tiny.en encoder"][speaker].append(whisper_states(samples))
                vectors["the bundled stage's voice vector"][speaker].append(stage_voice(samples))
        for kind, by_speaker in vectors.items():
            accuracy, same, cross = identification(by_speaker)
            print(f"| {name} | {len(clips)} | {kind} | {100 * accuracy:.1f} % | {same:.3f} | {cross:.3f} |", flush=True)


if __name__ == "__main__":
    main()
