"""LibriTTS and LibriTTS-R: 24 kHz read speech, one wav per sentence with its texts beside it.

Layout, as unpacked from openslr.org (SLR60 / SLR141):
    SRC/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav
    SRC/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.normalized.txt
    SRC/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.original.txt
SRC is the `LibriTTS` (or `LibriTTS_R`) folder holding subsets such as train-clean-100,
dev-clean and test-clean, or one subset folder. The normalized text is used: numbers
and abbreviations are already spelled out as spoken.
"""

from pathlib import Path

from valle.data.corpora._common import Listing, by_subset, read_text_file, report_skipped
from valle.data.manifest import Utterance
from valle.errors import CorpusError


def read_libritts(src: Path) -> Listing:
    """One listing per subset; wavs without normalized text are skipped and counted."""
    subsets = by_subset(src, "*.wav")
    if not subsets:
        raise CorpusError(
            f"no LibriTTS wavs under {src}: expected SRC/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav "
            "with a .normalized.txt beside each — is this the LibriTTS folder or one of its subsets?"
        )
    listing: Listing = {}
    for subset, wavs in subsets.items():
        rows, skipped = [], []
        for wav in wavs:
            text = read_text_file(wav.with_suffix(".normalized.txt"))
            if text:
                rows.append(Utterance(id=wav.stem, audio=wav, text=text, speaker=wav.parent.parent.name))
            else:
                skipped.append(wav.stem)
        report_skipped(f"LibriTTS {subset}", "without normalized text", skipped)
        listing[subset] = rows
    return listing
