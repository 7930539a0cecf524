"""Synthetic speakers: a voice is an engine, a base voice and the knobs that make it a person.

Distinctness comes from four independent axes: the base voice (espeak-ng's variants
model different vocal tracts, flite's voices are recordings of four people, SVOX Pico's
of two, Piper's of one, MBROLA's of sixteen with accents), the
accent, the pitch, and a vocal-tract-length change made by resampling, which moves
every formant by the same factor as a longer or shorter vocal tract would. The axes
are dealt out as stratified permutations, not drawn independently, so that no two
speakers share the same combination by chance. Piper has no pitch control: its pitch
moves by resampling, and its formants are set apart from the pitch by warping the
spectral envelope.
"""

import random
from dataclasses import asdict, dataclass

import numpy as np
import soxr

from valle.audio import warp_formants
from valle.data.synthetic.engines import Flite, Mbrola, Pico, Piper, engine
from valle.data.synthetic.sentences import ENGLISH

# espeak-ng variants that sound like a voice; whispering and robotic ones are left out.
ESPEAK_VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed",
    "RicishayMax", "Storm", "Tweaky", "adam", "anika", "announcer", "antonio", "aunty", "belinda",
    "benjamin", "boris", "caleb", "croak", "david", "ed", "edward", "f1", "f2", "f3", "f4", "f5",
    "gustave", "ian", "iven", "iven2", "iven3", "john", "kaukovalta", "klatt", "klatt2", "klatt3",
    "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel",
    "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph",
    "steph2", "travis", "victor", "zac",
)
ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
# Where espeak-ng's voice file for a language has another name than the language code its phonemes go by.
ESPEAK_VOICE_FILES = {"fr-fr": "fr", "en-gb": "en"}
FLITE_BASE_F0 = {"slt": 175.0, "rms": 100.0, "awb": 105.0, "kal16": 105.0}


@dataclass(frozen=True)
class Voice:
    """Everything needed to make one synthetic speaker say a sentence."""

    speaker: str
    engine: str  # "espeak", "flite", "pico", "piper" or "mbrola"
    base: str  # espeak "accent+variant", a flite voice name, a pico, piper or mbrola voice
    pitch: float  # espeak, mbrola: 0..100; flite: mean F0 in Hz; pico, piper: a multiplier
    pitch_range: int  # espeak only
    rate: float  # espeak, mbrola: words/min; flite, piper: duration stretch; pico: a speed multiplier
    tract: float  # formant scale from resampling (>1: shorter vocal tract, higher formants)
    gain_db: float  # speaking level relative to -20 dBFS RMS

    def to_dict(self) -> dict:
        return asdict(self)


def _spread(rng: random.Random, n: int, low: float, high: float) -> list[float]:
    """n values that cover [low, high] evenly, in random order (stratified sampling)."""
    values = [low + (high - low) * (i + rng.random()) / n for i in range(n)]
    rng.shuffle(values)
    return values


def design_voices(n_espeak: int, n_flite: int, seed: int, n_pico: int = 0, n_piper: int = 0,
                  language: str = "en-us", n_mbrola: int = 0) -> list[Voice]:
    """Deal out `n_espeak + n_flite + n_pico + n_piper + n_mbrola` distinct speakers, deterministic for `seed`.

    Pico's voices, then Piper's, then MBROLA's, are dealt last, so that a design without them is the one before
    they came.
    In another `language` than US English (British English too), espeak-ng's voices speak its accent alone (flite
    and Piper speak US English) and the speakers are named after it ("es-esp000"), so that corpora of several
    languages mix.
    """
    rng = random.Random(seed)
    voices: list[Voice] = []
    variants = list(ESPEAK_VARIANTS)
    rng.shuffle(variants)
    pitches, ranges = _spread(rng, n_espeak, 20, 80), _spread(rng, n_espeak, 25, 85)
    rates, tracts = _spread(rng, n_espeak, 140, 185), _spread(rng, n_espeak, 0.9, 1.12)
    gains = _spread(rng, n_espeak + n_flite, -4, 4)
    accents, prefix = (ESPEAK_ACCENTS, "") if language == ENGLISH else ((ESPEAK_VOICE_FILES.get(language, language),), f"{language}-")
    for i in range(n_espeak):
        accent = accents[i % len(accents)]
        voices.append(Voice(f"{prefix}esp{i:03d}", "espeak", f"{accent}+{variants[i % len(variants)]}",
                            round(pitches[i]), round(ranges[i]), round(rates[i]), round(tracts[i], 3), round(gains[i], 1)))
    # flite has only four people, so each is spread over pitch x vocal tract corners.
    f0_scales, tracts = _spread(rng, n_flite, 0.8, 1.25), _spread(rng, n_flite, 0.88, 1.14)
    stretches = _spread(rng, n_flite, 0.9, 1.15)
    for i in range(n_flite):
        base = Flite.VOICES[i % len(Flite.VOICES)]
        voices.append(Voice(f"fl{i:03d}", "flite", base, round(FLITE_BASE_F0[base] * f0_scales[i], 1), 0,
                            round(stretches[i], 3), round(tracts[i], 3), round(gains[n_espeak + i], 1)))
    # pico has two people, both women: pitch and vocal tract move them far apart.
    pitches, tracts = _spread(rng, n_pico, 0.75, 1.3), _spread(rng, n_pico, 0.86, 1.1)
    speeds, gains = _spread(rng, n_pico, 0.9, 1.15), _spread(rng, n_pico, -4, 4)
    for i in range(n_pico):
        voices.append(Voice(f"pi{i:03d}", "pico", Pico.VOICES[i % len(Pico.VOICES)], round(pitches[i], 3), 0,
                            round(speeds[i], 3), round(tracts[i], 3), round(gains[i], 1)))
    # piper has one person, a man: vocal tract, and pitch up to 14 % apart from it, spread him over many.
    tracts, apart = _spread(rng, n_piper, 0.8, 1.25), _spread(rng, n_piper, 0.88, 1.14)
    stretches, gains = _spread(rng, n_piper, 0.9, 1.15), _spread(rng, n_piper, -4, 4)
    for i in range(n_piper):
        voices.append(Voice(f"pp{i:03d}", "piper", Piper.VOICES[0], round(tracts[i] * apart[i], 3), 0,
                            round(stretches[i], 3), round(tracts[i], 3), round(gains[i], 1)))
    # mbrola has sixteen people: each in turn, the same person again at another pitch and vocal tract.
    bases = list(Mbrola.VOICES)
    rng.shuffle(bases)
    pitches, tracts = _spread(rng, n_mbrola, 25, 75), _spread(rng, n_mbrola, 0.92, 1.08)
    rates, gains = _spread(rng, n_mbrola, 140, 185), _spread(rng, n_mbrola, -4, 4)
    for i in range(n_mbrola):
        voices.append(Voice(f"mb{i:03d}", "mbrola", bases[i % len(bases)], round(pitches[i]), 0, round(rates[i]),
                            round(tracts[i], 3), round(gains[i], 1)))
    return voices


def render(voice: Voice, text: str, sample_rate: int) -> np.ndarray:
    """Speak `text` in `voice`; float32 mono at `sample_rate`, RMS-levelled, peak below 0 dBFS."""
    if voice.engine == "espeak":
        espeak = engine("espeak")
        # Resampling by `tract` also speeds speech up by that factor: ask espeak to compensate.
        samples = espeak.speak(text, voice.base, int(voice.pitch), voice.pitch_range, round(voice.rate / voice.tract))
        native = espeak.sample_rate
    elif voice.engine == "pico":
        pico = engine("pico")
        samples = pico.speak(text, voice.base, voice.pitch / voice.tract, voice.rate / voice.tract)
        native = pico.sample_rate
    elif voice.engine == "piper":
        piper = engine("piper")
        # Piper has no pitch control, so the resampling below moves its pitch by `pitch`; the formants, which that
        # moves by `pitch` as well, are first moved by tract / pitch, to end where `tract` puts them.
        samples = warp_formants(piper.speak(text, voice.rate * voice.pitch), voice.tract / voice.pitch, piper.sample_rate)
        native = piper.sample_rate * voice.pitch / voice.tract
    elif voice.engine == "mbrola":  # like espeak-ng, its rate compensates for the resampling's speed-up
        samples, native = engine("mbrola").speak(text, voice.base, int(voice.pitch), round(voice.rate / voice.tract))
    else:
        samples, native = engine("flite").speak(text, voice.base, voice.pitch / voice.tract, voice.rate * voice.tract)
    # Reading samples recorded at `native` as if at `native * tract` scales every frequency by `tract`.
    samples = soxr.resample(samples, native * voice.tract, sample_rate, quality="HQ")
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    if rms > 0:
        samples = samples * (10 ** ((-20 + voice.gain_db) / 20) / rms)
        peak = float(np.abs(samples).max())
        if peak > 0.98:
            samples = samples * (0.98 / peak)
    return samples.astype(np.float32)
