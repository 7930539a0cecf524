"""VCTK: 110 English speakers with various accents, about 400 sentences each.

Layouts, as unpacked from datashare.ed.ac.uk:
    0.92:  SRC/txt/<speaker>/<speaker>_<nnn>.txt
           SRC/wav48_silence_trimmed/<speaker>/<speaker>_<nnn>_mic1.flac   (and _mic2)
    0.80:  SRC/txt/<speaker>/<speaker>_<nnn>.txt
           SRC/wav48/<speaker>/<speaker>_<nnn>.wav
Audio and text pair by name. Both releases have gaps (p315 has no text; some
utterances lack one microphone), so either half without the other is skipped and
counted. 0.92 recorded two microphones: mic1 by default, `mic="mic2"` for the other.

The manifests say "en-us" like every other corpus: the language picks the G2P
dialect, not the speaker's accent, and one dialect keeps the phoneme inventory the
same across corpora; the accent lives in the audio, where the acoustic prompt carries it.
"""

from pathlib import Path

from valle.data.corpora._common import Listing, read_text_file, report_skipped
from valle.data.manifest import Utterance
from valle.errors import ConfigError, CorpusError

MICS = ("mic1", "mic2")


def read_vctk(src: Path, mic: str = "mic1") -> Listing:
    """The single listing `vctk`, sorted by utterance id."""
    if mic not in MICS:
        raise ConfigError(f"unknown VCTK microphone {mic!r}; choose one of {', '.join(MICS)}")
    texts = {path.stem: path for path in src.glob("txt/*/*.txt")}
    if not texts:
        raise CorpusError(f"no VCTK transcripts under {src}: expected SRC/txt/<speaker>/<speaker>_<nnn>.txt — is this the VCTK folder?")
    audio = _find_audio(src, mic)
    rows, no_text = [], []
    for utt_id in sorted(audio):
        text = read_text_file(texts[utt_id]) if utt_id in texts else ""
        if text:
            rows.append(Utterance(id=utt_id, audio=audio[utt_id], text=text, speaker=audio[utt_id].parent.name))
        else:
            no_text.append(utt_id)
    report_skipped("VCTK", "without text", no_text)
    report_skipped("VCTK", "without audio", sorted(texts.keys() - audio.keys()))
    return {"vctk": rows}


def _find_audio(src: Path, mic: str) -> dict[str, Path]:
    """Utterance id -> audio file, from whichever release SRC holds."""
    if (src / "wav48_silence_trimmed").is_dir():
        suffix = f"_{mic}.flac"
        audio = {path.name.removesuffix(suffix): path for path in src.glob(f"wav48_silence_trimmed/*/*{suffix}")}
        expected = f"SRC/wav48_silence_trimmed/<speaker>/<speaker>_<nnn>{suffix}"
    elif (src / "wav48").is_dir():
        if mic != "mic1":
            raise ConfigError(f"VCTK 0.80 under {src} has one microphone only; {mic} needs release 0.92 (wav48_silence_trimmed)")
        audio = {path.stem: path for path in src.glob("wav48/*/*.wav")}
        expected = "SRC/wav48/<speaker>/<speaker>_<nnn>.wav"
    else:
        raise CorpusError(
            f"no VCTK audio folder under {src}: expected SRC/wav48_silence_trimmed/<speaker>/<speaker>_<nnn>_{mic}.flac (release 0.92) "
            "or SRC/wav48/<speaker>/<speaker>_<nnn>.wav (release 0.80)"
        )
    if not audio:
        raise CorpusError(f"no VCTK audio under {src}: expected {expected}")
    return audio
