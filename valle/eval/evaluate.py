"""Synthesise the planned test items and score them beside the real recordings.

For every item the same scores are taken of the model's output, of the ground truth (the
speaker's real recording of the same text) and of its codec resynthesis (that recording
through the model's codec and back), so that each metric comes with the ceiling the
scorers allow on this data and the lower one the codec allows any model of its codes:
- WER of the recognised words against the transcript;
- SIM: cosine of speaker embeddings with the prompt (in continuation, of the part after
  the prompt, so that the prompt itself does not count);
- speaker identification: is the output nearest its own speaker among all speakers'
  prompts of that setting;
- pitch: how far the median F0 is from the prompt's, in semitones (`valle.eval.pitch`);
- DNSMOS (overall, P.835) as a naturalness estimate;
- RTF: synthesis time over the seconds of speech made, on this machine.
An output with under MIN_SCORED_SECONDS of new speech (a continuation that stopped at
once) scores as a failure: SIM 0, not identified, DNSMOS 1 (the scale's floor).
"""

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from valle.asr import Recognizer, word_error_rate, words_heard
from valle.audio import load_audio
from valle.eval.mos import DNSMOS
from valle.eval.pitch import median_f0, semitones_off
from valle.eval.protocol import EvalItem
from valle.infer.pipeline import VallE
from valle.model.sampling import SamplingConfig
from valle.speaker import SpeakerEmbedder, cosine

MIN_SCORED_SECONDS = 0.5
SYSTEMS = {"truth": "ground truth", "resynthesis": "codec resynthesis", "output": "model"}  # record key: row name


@dataclass
class Scorers:
    asr: Recognizer
    speaker: SpeakerEmbedder
    mos: DNSMOS | None = None  # None: no naturalness estimate


def evaluate(valle: VallE, items: list[EvalItem], scorers: Scorers, sampling: SamplingConfig | None = None,
             seed: int = 0) -> list[dict]:
    """One record per item: the scores of each of `SYSTEMS` (item i is sampled with seed + i, by `sampling`, the
    model's own when not given)."""
    rate = valle.codec.sample_rate
    records, prompts = [], {}  # a cross-sentence prompt serves all of its speaker's items: load and embed it once
    for i, item in enumerate(tqdm(items, desc="evaluating", unit="utt")):
        truth = load_audio(item.target.audio, rate)
        continuation = item.mode == "continuation"
        key = (item.prompt_audio, item.prompt_seconds)
        if key not in prompts:
            audio = truth[: int(item.prompt_seconds * rate)] if continuation else load_audio(item.prompt_audio, rate)
            prompts[key] = audio, scorers.speaker.embed(audio, rate), median_f0(audio, rate)
        prompt, prompt_vector, prompt_f0 = prompts[key]
        started = time.perf_counter()
        spoken = item.spoken or item.target
        out = valle.synthesize(spoken.text, prompt, item.prompt_text, sampling, seed + i, continuation=continuation,
                               language=spoken.language, prompt_language=item.prompt_language)
        seconds = time.perf_counter() - started
        skip = len(prompt) if continuation else 0  # in continuation, score what follows the prompt
        said, said_truth = out.samples[skip:], truth[skip:]
        resynthesis = valle.resynthesize(truth)
        record = {"mode": item.mode, "id": item.target.id, "speaker": item.target.speaker, "text": spoken.text,
                  "language": spoken.language, "truth_text": item.target.text,
                  "prompt": str(item.prompt_audio), "prompt_seconds": len(prompt) / rate, "prompt_f0": prompt_f0,
                  "output_seconds": len(said) / rate, "truth_seconds": len(said_truth) / rate, "synthesis_seconds": seconds}
        for system, whole, part in (("output", out.samples, said), ("truth", truth, said_truth),
                                    ("resynthesis", resynthesis, resynthesis[skip:])):
            scored = len(part) >= MIN_SCORED_SECONDS * rate
            vector = scorers.speaker.embed(part, rate) if scored else None
            record[system] = {"hypothesis": scorers.asr.transcribe(whole, rate), "vector": vector,
                              "text": record["text"] if system == "output" else record["truth_text"],
                              "sim": cosine(vector, prompt_vector) if scored else 0.0, "prompt_vector": prompt_vector,
                              "f0": median_f0(part, rate) if scored else None,
                              **({"dnsmos": scorers.mos.score(part, rate)["ovrl_mos"] if scored else 1.0} if scorers.mos else {})}
        records.append(record)
    _identify(records)
    return records


def _identify(records: list[dict]) -> None:
    """Per setting: is each output (and each real recording, and its resynthesis) nearest its own speaker's mean prompt
    embedding?"""
    for mode in {r["mode"] for r in records}:
        rows = [r for r in records if r["mode"] == mode]
        by_speaker = defaultdict(list)
        for r in rows:
            by_speaker[r["speaker"]].append(r["output"]["prompt_vector"])
        speakers = sorted(by_speaker)
        centroids = np.stack([np.mean(by_speaker[s], axis=0) for s in speakers])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        for r in rows:
            for system in SYSTEMS:
                vector = r[system]["vector"]
                r[system]["identified"] = vector is not None and speakers[int(np.argmax(centroids @ vector))] == r["speaker"]
    for r in records:
        for system in SYSTEMS:
            del r[system]["vector"], r[system]["prompt_vector"]  # not for the JSON report


def corpus_wer(scores: list[dict]) -> float:
    """The WER of one system's scores (each with the `text` said and the `hypothesis` heard), over all their words."""
    return word_error_rate([s["text"] for s in scores], [s["hypothesis"] for s in scores])


def summarize(records: list[dict]) -> list[dict]:
    """One row per setting and system (in the order of `SYSTEMS`): n, WER, words heard, SIM, identification, pitch,
    DNSMOS, RTF.

    `pitch_off`: the median over utterances of how far the median F0 is from the prompt's, in semitones
    (None where no utterance has both)."""
    rows = []
    for mode in dict.fromkeys(r["mode"] for r in records):
        chosen = [r for r in records if r["mode"] == mode]
        for system, name in SYSTEMS.items():
            scores = [r[system] for r in chosen]
            rows.append({
                "mode": mode, "system": name, "n": len(chosen),
                "wer": corpus_wer(scores),
                "heard": words_heard([s["text"] for s in scores], [s["hypothesis"] for s in scores]),
                "sim": float(np.mean([s["sim"] for s in scores])),
                "identification": float(np.mean([s["identified"] for s in scores])),
                "pitch_off": _median([semitones_off(r[system]["f0"], r["prompt_f0"]) for r in chosen]),
                "dnsmos": float(np.mean([s["dnsmos"] for s in scores])) if "dnsmos" in scores[0] else None,
                "rtf": None if system != "output" else
                sum(r["synthesis_seconds"] for r in chosen) / max(1e-9, sum(r["output_seconds"] for r in chosen)),
            })
    return rows


def by_speaker(records: list[dict]) -> list[dict]:
    """One row per speaker (in the order of first appearance), every setting together: n, and WER and SIM of each
    system (`wer_truth`, `sim_output`, ...).

    A voice whose own recordings the judge cannot hear (its ground truth WER) cannot be heard better when rendered
    closely; the rows tell such a voice apart from a rendering that loses words."""
    rows = []
    for speaker in dict.fromkeys(r["speaker"] for r in records):
        chosen = [r for r in records if r["speaker"] == speaker]
        row = {"speaker": speaker, "language": chosen[0]["language"], "n": len(chosen)}
        for system in SYSTEMS:
            scores = [r[system] for r in chosen]
            row[f"wer_{system}"] = corpus_wer(scores)
            row[f"sim_{system}"] = float(np.mean([s["sim"] for s in scores]))
        rows.append(row)
    return rows


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.median(known)) if known else None
