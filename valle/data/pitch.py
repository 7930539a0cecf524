"""The pitch of every frame of a tokenised corpus, tracked on its recordings (`valle data pitch`).

A frame stage that is told the pitch (`ModelConfig.pitch`) learns from these tracks. The
recordings are the ones the folder was tokenised from, found through the manifest its
index names (or one given), and each track is checked to cover its utterance's frames.
"""

import multiprocessing
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from valle.audio import load_audio
from valle.data.manifest import read_manifest
from valle.data.shards import TokenizedCorpus, write_pitch
from valle.errors import CorpusError
from valle.pitch import track_pitch

_ROWS: list[tuple[str, Path, int]] = []  # per worker process: (id, audio, frames) of the corpus's utterances
_RATES: tuple[int, float] = (0, 0.0)


def _start_worker(rows: list[tuple[str, Path, int]], rates: tuple[int, float]) -> None:
    global _ROWS, _RATES
    torch.set_num_threads(1)
    _ROWS, _RATES = rows, rates


def _track(i: int) -> Tensor:
    id_, audio, frames = _ROWS[i]
    sample_rate, frame_rate = _RATES
    f0 = track_pitch(load_audio(audio, sample_rate), sample_rate, frame_rate)
    if len(f0) != frames:
        raise CorpusError(f"{audio} gives {len(f0)} frames where utterance {id_} has {frames}: the recording changed "
                          "since the folder was tokenised; tokenise it again")
    return torch.from_numpy(f0)


def track_corpus(directory: str | Path, manifest: str | Path | None = None, workers: int = 1) -> Path:
    """Write `pitch.safetensors` into the tokenised folder `directory`: each frame's F0, from the recordings of
    `manifest` (by default the one the folder was tokenised from). `workers` processes share the utterances."""
    corpus = TokenizedCorpus(directory)
    manifest = Path(manifest or corpus.index["manifest"]["path"])
    if not manifest.is_file():
        raise CorpusError(f"{directory} was tokenised from {manifest}, which is not there: give the manifest with "
                          "--manifest (its recordings are tracked)")
    audio = {row.id: row.audio for row in read_manifest(manifest)}
    missing = [id_ for id_ in corpus.ids if id_ not in audio]
    if missing:
        raise CorpusError(f"{manifest} has no row for {len(missing)} of {directory}'s utterances (first: {missing[0]}); "
                          "give the manifest the folder was tokenised from with --manifest")
    if workers < 1:
        raise CorpusError(f"--workers must be at least 1, not {workers}")
    rows = [(id_, audio[id_], frames) for id_, frames in zip(corpus.ids, corpus.n_frames)]
    rates = (corpus.codec.sample_rate, corpus.codec.frame_rate)
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (rows, rates)) as pool:
        tracks = list(tqdm(pool.imap(_track, range(len(rows)), chunksize=16), total=len(rows),
                           desc=f"tracking pitch in {directory}", unit="utt"))
    return write_pitch(directory, tracks, source=f"{manifest.resolve()} (YIN, valle.pitch)")
