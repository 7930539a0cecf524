"""Is a recording fit to be a voice prompt? Findings in plain words, before any synthesis.

VALL-E clones whatever its prompt holds: background noise, music, a second voice, the
echo of a room and the crackle of clipping come back in every sentence it speaks, and
a prompt with little speech or few distinct sounds gives it little voice to go on.
`check_prompt` measures each of these (`valle.infer.prompt_signal`; speaker embeddings
of the prompt's windows with Resemblyzer when it is installed; phoneme coverage when
the transcript is known) and reports each problem as a finding with its measured
value, the threshold it crossed and what to do about it. A finding may rest on more
than one measure: a second voice that takes turns with the first shows in the speaker
embeddings, one that speaks at the same time in the pitch periods of each 20 ms. The
thresholds were set with `benchmarks/prompt_check.py` on degraded speech of held-out
corpus speakers.
"""

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from valle.audio import resample
from valle.errors import DependencyError, TextError
from valle.infer import prompt_signal as signal
from valle.infer.prompt_coverage import phoneme_coverage
from valle.speaker import SpeakerEncoder

CODES = ("too_short", "noise", "clipping", "not_speech", "several_speakers", "reverberant", "low_coverage", "too_quiet")


@dataclass(frozen=True)
class Finding:
    """One problem: `code` (one of `CODES`), the measured `value`, the `threshold` it crossed, and `advice`."""

    code: str
    value: float
    threshold: float
    advice: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CheckConfig:
    """Where a measure becomes a finding.

    The limits are those `python benchmarks/prompt_check.py --split valid --n 60 --tune`
    places between clean and degraded prompts of the synthetic corpus's validation
    speakers, rounded. Those clean prompts are cleaner than most recordings made at home,
    so that real recordings raise `noise` and `reverberant` more often than they did there.
    """

    min_speech_seconds: float = 1.8
    min_snr_db: float = 24.6
    max_clipped_percent: float = 0.04
    max_not_speech_percent: float = 4.2
    max_voice_contrast: float = 0.089  # how much less alike two groups of speech windows are across than within
    max_two_voice_percent: float = 2.1  # speech in which a second voice's pitch sounds under the first's
    max_reverb_seconds: float = 0.37
    min_phonemes: int = 16  # distinct phonemes: the sparsest 1 % of 3 s stretches of the corpus's read speech
    min_level_dbfs: float = -39.4
    min_speaker_check_seconds: float = 4.0  # with less speech, one voice's windows differ as much as two voices'
    speaker_window_seconds: float = 1.0  # short enough that a second voice has windows of its own
    speaker_hop_seconds: float = 0.5
    language: str = "en-us"


@dataclass
class PromptReport:
    """What `check_prompt` found: `ok` when nothing; `not_checked` names the checks that could not run, and why."""

    findings: list[Finding]
    seconds: float
    speech_seconds: float
    measures: dict[str, float | None]
    not_checked: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "findings": [f.to_dict() for f in self.findings], "seconds": round(self.seconds, 3),
                "speech_seconds": round(self.speech_seconds, 3), "measures": self.measures, "not_checked": self.not_checked}


@functools.cache
def _speaker_encoder() -> tuple[object | None, str]:
    """Resemblyzer's encoder (loaded once) or None with the reason it is missing."""
    try:
        return SpeakerEncoder(), ""
    except DependencyError as e:
        return None, str(e)


def speaker_embeddings(pieces: list[np.ndarray]) -> np.ndarray | None:
    """Unit d-vectors `[pieces, 256]` of pieces of audio at 16 kHz, or None without Resemblyzer."""
    encoder, _ = _speaker_encoder()
    if encoder is None:
        return None
    vectors = np.stack([encoder.embed(piece, signal.RATE) for piece in pieces])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def voice_contrast(speech: np.ndarray, window_seconds: float, hop_seconds: float) -> tuple[float | None, str]:
    """How much less alike the prompt's speech windows sound across two groups than within them (d-vector cosines).

    The windows (pauses cut out) are split in two around the pair least alike, each
    window joining the nearer of the two. One voice splits into groups no more alike
    inside than across: the contrast is near zero, whatever that voice's own spread. A
    second voice that takes over part of the recording forms a group of its own, alike
    inside and unlike the other. None (and the reason) when Resemblyzer is not
    installed or there is too little speech for two groups.
    """
    size, hop = round(window_seconds * signal.RATE), round(hop_seconds * signal.RATE)
    if len(speech) < size + 2 * hop:
        return None, f"under {window_seconds + 2 * hop_seconds:.1f} s of speech: too little to compare windows"
    starts = np.unique(np.append(np.arange(0, len(speech) - size + 1, hop), len(speech) - size))
    vectors = speaker_embeddings([speech[s:s + size] for s in starts])
    if vectors is None:
        return None, _speaker_encoder()[1]
    cosines = vectors @ vectors.T
    a, b = np.unravel_index(np.argmin(cosines), cosines.shape)
    first = cosines[:, a] >= cosines[:, b]
    pairs = ~np.eye(len(vectors), dtype=bool)
    within = cosines[(np.outer(first, first) | np.outer(~first, ~first)) & pairs]
    return float(within.mean() - cosines[np.outer(first, ~first)].mean()), ""


def _voice_measures(x: np.ndarray, speech: np.ndarray, music: bool,
                    config: CheckConfig) -> tuple[float | None, float | None, str]:
    """The two measures of a second voice: `voice_contrast` (one that takes turns with the first) and
    `two_voice_percent` (one at the same time); each None where it cannot be taken, and why ("" when both were)."""
    contrast, two_voices, why = None, None, []
    if signal.frame_seconds(int(speech.sum())) < config.min_speaker_check_seconds:
        why.append(f"under {config.min_speaker_check_seconds:g} s of speech: too little to tell voices that take turns "
                   "apart reliably")
    else:
        samples_of_speech = np.repeat(speech, signal.HOP)[: len(x)]
        contrast, reason = voice_contrast(x[: len(samples_of_speech)][samples_of_speech],
                                          config.speaker_window_seconds, config.speaker_hop_seconds)
        why.append(reason)
    if music:
        why.append("music or tones would pass for a second voice speaking at the same time")
    else:
        two_voices = signal.two_voice_percent(x, speech)
    return contrast, two_voices, "; ".join(filter(None, why))


def check_prompt(samples: np.ndarray, sample_rate: int, text: str | None = None, config: CheckConfig = CheckConfig()) -> PromptReport:
    """Measure a prompt recording (mono float samples, as recorded: not normalised) and report its problems.

    `text`, what the recording says, lets the phoneme coverage be checked; without it
    that check is listed in `not_checked`.
    """
    x = resample(np.asarray(samples, dtype=np.float32), sample_rate, signal.RATE)
    power = signal.power_spectrogram(x)
    level = signal.band_level_db(power)
    speech = signal.speech_mask(level)
    speech_seconds = signal.frame_seconds(int(speech.sum()))
    tonal = signal.tonal_frames(x)[: len(speech)]
    not_checked: dict[str, str] = {}
    snr, not_speech = signal.snr_db(power, speech), 100 * float(tonal[speech].mean()) if speech.any() else 0.0

    music = not_speech > config.max_not_speech_percent
    contrast, two_voices, why = _voice_measures(x, speech, music, config)
    if why:
        not_checked["several_speakers"] = why
    reverb = None
    if music:
        not_checked["reverberant"] = "music or tones hide how the room's echo dies away"
    elif (reverb := signal.decay_seconds(level, speech, signal.noise_level_db(power))) is None:
        not_checked["reverberant"] = "too few places where the speech stops cleanly to measure the room's decay"
    phonemes = None
    if text is None:
        not_checked["low_coverage"] = "no transcript given: give what the prompt says to check its phonemes"
    else:
        try:
            phonemes = phoneme_coverage(text, config.language).distinct
        except TextError as e:
            not_checked["low_coverage"] = str(e)
    measures = {
        "speech_seconds": round(speech_seconds, 3),
        "level_dbfs": round(signal.active_level_db(x, speech), 2),
        "snr_db": round(snr, 2),
        "clipped_percent": round(100 * signal.clipped_share(x), 4),
        "not_speech_percent": round(not_speech, 2),
        "voice_contrast": None if contrast is None else round(contrast, 4),
        "two_voice_percent": None if two_voices is None else round(two_voices, 2),
        "reverb_seconds": None if reverb is None else round(reverb, 3),
        "phonemes": phonemes,
    }
    return PromptReport(_findings(measures, config), len(x) / signal.RATE, speech_seconds, measures, not_checked)


@dataclass(frozen=True)
class Rule:
    """Finding `code` is raised when `measure` is on the wrong side (`below` or above) of `CheckConfig.<limit>`."""

    code: str
    measure: str
    limit: str
    below: bool

    def crossed(self, value: float | None, threshold: float) -> bool:
        return value is not None and (value < threshold if self.below else value > threshold)


RULES = (  # in the order of CODES; where a finding has several measures, the first crossed is reported
    Rule("too_short", "speech_seconds", "min_speech_seconds", True),
    Rule("noise", "snr_db", "min_snr_db", True),
    Rule("clipping", "clipped_percent", "max_clipped_percent", False),
    Rule("not_speech", "not_speech_percent", "max_not_speech_percent", False),
    Rule("several_speakers", "voice_contrast", "max_voice_contrast", False),  # a second voice taking turns
    Rule("several_speakers", "two_voice_percent", "max_two_voice_percent", False),  # ... or at the same time
    Rule("reverberant", "reverb_seconds", "max_reverb_seconds", False),
    Rule("low_coverage", "phonemes", "min_phonemes", True),
    Rule("too_quiet", "level_dbfs", "min_level_dbfs", True),
)
ADVICE = {  # by measure
    "speech_seconds": "only {value:.1f} s of speech (at least {threshold:g} s needed): record 3-10 s of continuous speech",
    "snr_db": "background noise: the speech is only {value:.0f} dB above it (at least {threshold:g} dB needed); record "
              "in a quiet room, close to the microphone, with fans and traffic away",
    "clipped_percent": "clipped: {value:.2f} % of the samples sit flat at the peak (at most {threshold:g} %); record with "
                       "the input level lower so that the loudest words stay below the top",
    "not_speech_percent": "{value:.0f} % of the speech has music or steady tones under it (at most {threshold:g} %); "
                          "record without music, ringing or beeps in the background",
    "voice_contrast": "more than one voice: parts of the recording sound like different people (contrast {value:.2f}, "
                      "at most {threshold:g} wanted); keep only the one speaker (`valle prompt pick` finds a stretch)",
    "two_voice_percent": "two voices at once: a second voice sounds under the first in {value:.1f} % of the speech (at "
                         "most {threshold:g} % wanted); record the speaker alone, with no one talking in the background",
    "reverb_seconds": "echo: the room rings for about {value:.2f} s (at most {threshold:g} s wanted); record closer to the "
                      "microphone, in a smaller or furnished room",
    "phonemes": "the transcript has only {value:.0f} distinct sounds (3 s of read speech usually has {threshold:g} or "
                "more): read a varied sentence rather than repeated words",
    "level_dbfs": "too quiet: the speech is at {value:.0f} dBFS (at least {threshold:g} dBFS wanted); speak closer to the "
                  "microphone or raise its input level",
}


def _findings(measures: dict[str, float | None], config: CheckConfig) -> list[Finding]:
    findings: dict[str, Finding] = {}
    for rule in RULES:
        value, threshold = measures[rule.measure], getattr(config, rule.limit)
        if rule.code not in findings and rule.crossed(value, threshold):
            advice = ADVICE[rule.measure].format(value=value, threshold=threshold)
            findings[rule.code] = Finding(rule.code, value, threshold, advice)
    return list(findings.values())
