"""Corpus readers: a corpus folder, exactly as distributed, becomes JSONL manifests.

Each reader lists the utterances of its corpus's layout; `prepare_corpus` measures
their durations and writes one manifest per subset to OUT/<subset>.jsonl. Every row
has the language "en-us" (see `vctk` for why VCTK is no exception).

The speech that ships in Debian packages (`debian`: asterisk, fillets, tuxpaint, ...)
is read by `valle.data.corpora.debian`, in many languages, from where Debian installs it.
"""

from collections.abc import Callable
from pathlib import Path

from valle.data.corpora._common import Listing, check_folder, with_durations
from valle.data.corpora.debian import SOURCE_NAMES, prepare_debian
from valle.data.corpora.folder import read_folder
from valle.data.corpora.librispeech import read_librispeech
from valle.data.corpora.libritts import read_libritts
from valle.data.corpora.ljspeech import read_ljspeech
from valle.data.corpora.vctk import read_vctk
from valle.data.manifest import write_manifest
from valle.errors import CorpusError

CORPUS_READERS: dict[str, Callable[..., Listing]] = {
    "libritts": read_libritts,
    "librispeech": read_librispeech,
    "ljspeech": read_ljspeech,
    "vctk": read_vctk,
    "folder": read_folder,
}


def prepare_corpus(name: str, src: str | Path | None, out: str | Path, **options: object) -> list[Path]:
    """Write the manifests of corpus `name` found in `src` to `out`; returns their paths.

    `options` go to the reader, e.g. `mic="mic2"` for VCTK. The Debian sources take no
    options, and `src` None for them is this system's root.
    """
    if name in SOURCE_NAMES:
        return prepare_debian(name, src, out)
    if name not in CORPUS_READERS:
        raise CorpusError(f"unknown corpus {name!r}; choose one of {', '.join((*CORPUS_READERS, *SOURCE_NAMES))}")
    if src is None:
        raise CorpusError(f"{name} needs SRC, the folder the corpus was unpacked into")
    src = check_folder(Path(src))
    written = []
    for subset, rows in CORPUS_READERS[name](src, **options).items():
        if not rows:
            raise CorpusError(f"no usable utterances for {subset} under {src}: every one was skipped (reasons above)")
        path = Path(out) / f"{subset}.jsonl"
        write_manifest(with_durations(rows, desc=f"{name} {subset}"), path)
        written.append(path)
    return written


__all__ = ["CORPUS_READERS", "SOURCE_NAMES", "prepare_corpus", "read_folder", "read_librispeech", "read_libritts", "read_ljspeech",
           "read_vctk"]
