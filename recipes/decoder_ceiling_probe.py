"""Where the compact codec loses a voice: its quantiser, its decoder's magnitudes or its decoder's phases.

A probe, not an option. Each recording of a split (PER a speaker) is rendered seven ways and
scored by SIM to another recording of its speaker and by the Whisper judge's WER:
the recording; codec resynthesis; the decoder on the unquantised latents; the recording's
magnitudes with the decoder's phases; the decoder's magnitudes with the recording's phases;
the recording's magnitudes with phases found by 32 Griffin-Lim iterations from noise; and
codec resynthesis with its phases refined by 16 Griffin-Lim iterations from the decoder's.

    python recipes/decoder_ceiling_probe.py runs/corpus10h/test.jsonl 3 [CODEC_FOLDER]
"""

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from valle.asr import load_recognizer, word_errors
from valle.audio import load_audio
from valle.codec.compact import CompactCodec
from valle.codec.spectral import pad_to_hop
from valle.data.manifest import read_manifest
from valle.speaker import SpeakerEncoder, cosine


def speak(codec: CompactCodec, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    return codec.istft.inverse(torch.polar(magnitude, phase))


def griffin_lim(codec: CompactCodec, magnitude: torch.Tensor, phase: torch.Tensor, iterations: int) -> torch.Tensor:
    for _ in range(iterations):
        phase = codec.istft(speak(codec, magnitude, phase)).angle()
    return speak(codec, magnitude, phase)


def renderings(codec: CompactCodec, wav: torch.Tensor) -> dict[str, torch.Tensor]:
    latent = codec._latents(wav)
    quantized, _, _ = codec.quantizer(latent)
    spectrum = codec.istft(wav)
    true_magnitude = spectrum.abs()
    magnitude, phase = codec.spectrum(latent)
    resynthesis = codec.spectrum(quantized)
    return {"recording": wav, "codec resynthesis": speak(codec, *resynthesis),
            "decoder, unquantised latents": speak(codec, magnitude, phase),
            "recording's magnitudes, decoder's phases": speak(codec, true_magnitude, phase),
            "decoder's magnitudes, recording's phases": speak(codec, magnitude, spectrum.angle()),
            "recording's magnitudes, Griffin-Lim phases": griffin_lim(codec, true_magnitude,
                                                                  torch.rand_like(true_magnitude) * 2 * np.pi, 32),
            "codec resynthesis, phases refined by Griffin-Lim": griffin_lim(codec, *resynthesis, 16)}


@torch.no_grad()
def main(manifest: Path, per: int, folder: str) -> None:
    torch.set_num_threads(1)
    codec = CompactCodec.from_pretrained(folder).float().eval()
    encoder, judge = SpeakerEncoder(), load_recognizer("auto", threads=1)
    speakers = defaultdict(list)
    for row in read_manifest(manifest):
        speakers[row.speaker].append(row)
    sims, errors, words = defaultdict(list), defaultdict(int), defaultdict(int)
    for rows in speakers.values():
        reference = encoder.embed(load_audio(rows[-1].audio, codec.sample_rate), codec.sample_rate)
        for row in rows[:per]:
            wav = pad_to_hop(torch.from_numpy(load_audio(row.audio, codec.sample_rate))[None], codec.config.hop_length)
            for name, audio in renderings(codec, wav).items():
                samples = audio[0].numpy()
                sims[name].append(cosine(encoder.embed(samples, codec.sample_rate), reference))
                e, n = word_errors(row.text, judge.transcribe(samples, codec.sample_rate))
                errors[name] += e
                words[name] += n
    print(f"| {len(sims['recording'])} recordings | SIM | WER |\n|---|---:|---:|")
    for name in sims:
        print(f"| {name} | {np.mean(sims[name]):.3f} | {100 * errors[name] / words[name]:.1f} % |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "valle/codec/pretrained/compact-16k")
