"""Does a voice made less periodic become easier for the judge? The phase above a cut frequency made random.

    python recipes/breathy_probe.py SCORES.json VOICES MODEL:prompt_map:speed [N]

For the first N (8) test utterances of each of the comma-separated VOICES in a `benchmarks/zero_shot.py --out` file of
the test split, the recordings and MODEL's outputs (spoken as the benchmark has it say them, at the given settings) are
read by the benchmark's judge as they are, and again with the phase of every short-time spectrum bin above 3,000, 1,500
and 700 Hz replaced by a random one: the harmonics there become noise of the same spectrum, a breathier voice, as the
bundled weights render the test voices (`recipes/voice_quality_probe.py`). Prints the WER per voice, source and cut, and
over all voices.
"""

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from voice_quality_probe import TEST, first_utterances, spoken

from valle.asr import load_recognizer, word_error_rate
from valle.data.manifest import read_manifest
from valle.infer import VallE

CUTS = (None, 3000.0, 1500.0, 700.0)  # None: as it is
FFT, HOP = 512, 128


def breathy(samples: np.ndarray, rate: int, cut: float, seed: int = 0) -> np.ndarray:
    """`samples` with the phase of every STFT bin at or above `cut` Hz made random (its magnitude kept)."""
    x, window = torch.from_numpy(samples.astype(np.float32)), torch.hann_window(FFT)
    spectrum = torch.stft(x, FFT, HOP, window=window, return_complex=True)
    high = (torch.fft.rfftfreq(FFT, 1 / rate) >= cut)[:, None]
    phase = torch.rand(spectrum.shape, generator=torch.Generator().manual_seed(seed)) * 2 * np.pi
    spectrum = torch.where(high, spectrum.abs() * torch.exp(1j * phase), spectrum)
    return torch.istft(spectrum, FFT, HOP, window=window, length=len(x)).numpy()


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    scores, voices = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2].split(",")
    name, prompt_map, speed = sys.argv[3].split(":")
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    test = {u.id: u for u in read_manifest(TEST)}
    torch.set_num_threads(2)
    judge = load_recognizer("auto", threads=2)
    valle = VallE.from_pretrained(name)
    sampling = valle.sampling.updated(prompt_map=float(prompt_map), speed=float(speed))
    heard: dict[tuple[str, float | None], tuple[list[str], list[str]]] = {}
    print("| voice | source | " + " | ".join("as it is" if c is None else f"random above {c:.0f} Hz" for c in CUTS) + " |")
    print("|---|---|" + "---:|" * len(CUTS))
    for voice, utterances in first_utterances(scores, voices, n).items():
        references = [u["text"] for u in utterances]
        recordings = [sf.read(test[u["id"]].audio, dtype="float32") for u in utterances]
        sources = {"recordings": recordings, Path(name).name: spoken(valle, sampling, utterances, test)}
        for source, audio in sources.items():
            cells = []
            for cut in CUTS:
                hypotheses = [judge.transcribe(x if cut is None else breathy(x, rate, cut), rate) for x, rate in audio]
                cells.append(f"{word_error_rate(references, hypotheses):.1%}")
                refs, hyps = heard.setdefault((source, cut), ([], []))
                refs.extend(references)
                hyps.extend(hypotheses)
            print(f"| {voice} | {source} | " + " | ".join(cells) + " |", flush=True)
    for source in ("recordings", Path(name).name):
        print(f"| all | {source} | " + " | ".join(f"{word_error_rate(*heard[(source, cut)]):.1%}" for cut in CUTS) + " |")


if __name__ == "__main__":
    main()
