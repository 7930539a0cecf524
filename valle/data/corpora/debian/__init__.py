"""Human speech with transcripts that ships inside Debian packages, as training manifests.

Each source is one package family, read where Debian installs it (or under a folder the
packages were unpacked into, see `_common`), and written to OUT/<source>.jsonl:

    asterisk     telephone prompts, 8 studio voices, en/es/fr/it/ru
    fillets      Fish Fillets NG's voice-acted dialogue, cs/nl
    tuxpaint     Tux Paint's spoken stamp descriptions, a dozen languages
    festvox-ru   the recordings of Festival's Russian voice
    klettres     KLettres' letters and syllables, ~20 languages
    ktuberling   KTuberling's English words
    debian       every one of the above that is installed

Rows carry the espeak-ng language code of their text; clips without a transcript, too
short, unreadable or repeated are skipped and counted per reason. The data of a few
other packages is reserved for evaluation and refused (`_common.RESERVED`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from valle.data.corpora._common import check_folder
from valle.data.corpora.debian import _common, asterisk, festvox_ru, fillets, kde, tuxpaint
from valle.data.corpora.debian._common import PackageMissing, Skips, measure
from valle.data.manifest import Utterance, write_manifest
from valle.errors import CorpusError

log = logging.getLogger("valle.data.corpora")

ALL = "debian"


@dataclass(frozen=True)
class DebianSource:
    """A package family: what to install for it, and how to list its clips under a root folder."""

    packages: tuple[str, ...]
    read: Callable[[Path, Skips], list[Utterance]]
    extract: tuple[str, ...] = ()
    """Packages Debian declares in conflict with `packages`: unpacked beside them, not installed."""


DEBIAN_SOURCES = {
    "asterisk": DebianSource(asterisk.PACKAGES, asterisk.read_asterisk, extract=asterisk.CONFLICTING),
    "fillets": DebianSource(fillets.PACKAGES, fillets.read_fillets),
    "tuxpaint": DebianSource(tuxpaint.PACKAGES, tuxpaint.read_tuxpaint),
    "festvox-ru": DebianSource(festvox_ru.PACKAGES, festvox_ru.read_festvox_ru),
    "klettres": DebianSource(kde.KLETTRES_PACKAGES, kde.read_klettres),
    "ktuberling": DebianSource(kde.KTUBERLING_PACKAGES, kde.read_ktuberling),
}
SOURCE_NAMES = (*DEBIAN_SOURCES, ALL)


def prepare_debian(name: str, src: str | Path | None, out: str | Path) -> list[Path]:
    """Write OUT/<source>.jsonl for source `name` (or every installed one for "debian"); returns the paths.

    `src` is the root the packages lie under: None for this system's `/`.
    """
    if name not in SOURCE_NAMES:
        raise CorpusError(f"unknown Debian source {name!r}; choose one of {', '.join(SOURCE_NAMES)}")
    root = check_folder(Path(src)) if src is not None else _common.SYSTEM_ROOT
    written = []
    for source in DEBIAN_SOURCES if name == ALL else [name]:
        try:
            written.append(_prepare(source, root, Path(out)))
        except PackageMissing:
            if name != ALL:
                raise
            log.warning("debian: %s is not installed, left out (`valle data install-sources %s` installs it)", source, source)
    if not written:
        raise CorpusError(f"none of the Debian speech packages is installed under {root}: "
                          f"`valle data install-sources {ALL}` installs them all")
    return written


def _prepare(source: str, root: Path, out: Path) -> Path:
    skips = Skips()
    rows = measure(DEBIAN_SOURCES[source].read(root, skips), source, out, skips, root)
    skips.report(source)
    if not rows:
        raise CorpusError(f"no usable clips in {source} under {root}: every one was skipped (reasons above)")
    path = out / f"{source}.jsonl"
    write_manifest(rows, path)
    return path


__all__ = ["DEBIAN_SOURCES", "SOURCE_NAMES", "DebianSource", "prepare_debian"]
