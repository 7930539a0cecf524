"""Tokenised shards: the on-disk format and its reader.

A tokenised corpus is a folder written by `valle data tokenize` (see
`valle.data.tokenize`):

    index.json                the codec, the phoneme vocabulary, the manifest it came
                              from, the shards with their ids, and what was skipped
    shard-00000.safetensors   utterances [0, shard_size) of the manifest
    shard-00001.safetensors   utterances [shard_size, 2 * shard_size), ...

A shard is a safetensors file (no pickle) with four tensors:

    codes            int16 [K, sum T]   the codec codes of its utterances, concatenated in time
    code_offsets     int64 [n + 1]      utterance j has codes[:, code_offsets[j]:code_offsets[j + 1]]
    phonemes         int16 [sum P]      phoneme ids (int32 for a vocabulary over 32768 tokens)
    phoneme_offsets  int64 [n + 1]

and one metadata entry, `valle`, a JSON object with the utterances' ids, speakers,
texts, languages and durations, the rows it was made from, the identity of what made
it (manifest hash, codec, vocabulary, shard size) and a checksum of its tensors. A
single entry because safetensors writes several in an unpredictable order, and a
shard's bytes must depend on its content only.

`index.json` is written last: a folder with an index is complete and consistent.

A folder may also hold frame tracks, one value per frame of every utterance in corpus
order (`frames` [sum T], `offsets` int64 [n + 1]): `alignments.safetensors` (`valle data
align`), the phoneme spoken in each frame (int16), for the stages that are told it, and
`pitch.safetensors` (`valle data pitch`), each frame's F0 in Hz, 0 where unvoiced (float16).
"""

import hashlib
import json
import struct
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from valle.codec.record import CodecRecord
from valle.errors import CorpusError
from valle.files import atomic_write
from valle.text.vocab import PhonemeVocab

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
ALIGNMENTS_FILE = "alignments.safetensors"
PITCH_FILE = "pitch.safetensors"
METADATA_KEY = "valle"
CODES, CODE_OFFSETS, PHONEMES, PHONEME_OFFSETS = "codes", "code_offsets", "phonemes", "phoneme_offsets"
_MAX_HEADER = 100 * 2**20  # safetensors' own limit


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def tensors_sha256(tensors: dict[str, Tensor]) -> str:
    """A checksum of names, dtypes, shapes and values, independent of the file layout."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{list(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encode_shard(codes: list[Tensor], phonemes: list[Tensor], metadata: dict[str, Any], n_codebooks: int,
                 phoneme_dtype: torch.dtype = torch.int16) -> bytes:
    """The bytes of a shard holding `codes[j]` ([K, T_j]) and `phonemes[j]` ([P_j]) for each utterance j."""
    tensors = {
        CODES: torch.cat([c.to(torch.int16) for c in codes], dim=1) if codes else torch.zeros(n_codebooks, 0, dtype=torch.int16),
        CODE_OFFSETS: _offsets([c.shape[1] for c in codes]),
        PHONEMES: torch.cat([p.to(phoneme_dtype) for p in phonemes]) if phonemes else torch.zeros(0, dtype=phoneme_dtype),
        PHONEME_OFFSETS: _offsets([len(p) for p in phonemes]),
    }
    metadata = {**metadata, "tensors_sha256": tensors_sha256(tensors)}
    return save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(metadata, ensure_ascii=False, sort_keys=True)})


def _offsets(lengths: list[int]) -> Tensor:
    return torch.tensor([0] + lengths, dtype=torch.int64).cumsum(0)


def read_shard_metadata(path: str | Path) -> dict[str, Any] | None:
    """The `valle` metadata of a shard from its header alone, or None when the file is
    missing or not a shard (truncated, overwritten, another program's file)."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if size > _MAX_HEADER:
                return None
            header = json.loads(f.read(size))
        metadata = json.loads(header["__metadata__"][METADATA_KEY])
    except (OSError, struct.error, ValueError, KeyError, TypeError):
        return None
    return metadata if isinstance(metadata, dict) else None


def read_shard(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Metadata and tensors of a complete shard; `CorpusError` for a truncated or corrupt one."""
    path = Path(path)
    metadata = read_shard_metadata(path)
    if metadata is None:
        raise CorpusError(f"{path} is not a complete shard; run `valle data tokenize` again to redo it")
    try:
        tensors = load_safetensors(path.read_bytes())
    except (SafetensorError, OSError) as e:
        raise CorpusError(f"{path} is corrupt ({e}); run `valle data tokenize` again to redo it") from None
    if tensors_sha256(tensors) != metadata.get("tensors_sha256"):
        raise CorpusError(f"{path} fails its checksum; run `valle data tokenize` again to redo it")
    return metadata, tensors


@dataclass(frozen=True)
class TokenizedUtterance:
    """One utterance of a tokenised corpus: `phonemes` [P] and `codes` [K, T], both int64; `alignment` [T]: the
    phoneme (index into `phonemes`) spoken in each frame, where the folder has alignments; `pitch` [T]: each frame's
    F0 in Hz (0: unvoiced), where it has a pitch track."""

    id: str
    speaker: str
    text: str
    language: str
    duration: float
    phonemes: Tensor
    codes: Tensor
    alignment: Tensor | None = None
    pitch: Tensor | None = None


class _OpenShard:
    def __init__(self, path: Path) -> None:
        try:
            self.file = safe_open(str(path), framework="pt")
            self.metadata = json.loads(self.file.metadata()[METADATA_KEY])
            self.code_offsets = self.file.get_tensor(CODE_OFFSETS).tolist()
            self.phoneme_offsets = self.file.get_tensor(PHONEME_OFFSETS).tolist()
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
            raise CorpusError(f"{path} is not a readable shard ({e}); run `valle data tokenize` again to redo it") from None

    def item(self, j: int) -> TokenizedUtterance:
        m = self.metadata
        c0, c1 = self.code_offsets[j], self.code_offsets[j + 1]
        p0, p1 = self.phoneme_offsets[j], self.phoneme_offsets[j + 1]
        return TokenizedUtterance(
            id=m["ids"][j], speaker=m["speakers"][j], text=m["texts"][j], language=m["languages"][j],
            duration=m["durations"][j],
            phonemes=self.file.get_slice(PHONEMES)[p0:p1].long(),
            codes=self.file.get_slice(CODES)[:, c0:c1].long(),
        )


class TokenizedCorpus:
    """Read a folder written by `valle data tokenize`: `corpus[id]` or `corpus[position]`.

    Only `index.json` is read up front; a shard is opened (memory-mapped) when one of
    its utterances is first asked for, and the last `cache_shards` stay open.
    """

    def __init__(self, directory: str | Path, cache_shards: int = 8) -> None:
        self.directory = Path(directory)
        path = self.directory / INDEX_FILE
        if not path.is_file():
            raise CorpusError(f"{self.directory} holds no {INDEX_FILE}: it is not a tokenised corpus, or its "
                              "tokenisation did not finish; run `valle data tokenize MANIFEST --out "
                              f"{self.directory}` first")
        try:
            self.index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorpusError(f"{path} is not valid JSON ({e}); run `valle data tokenize` again") from None
        if self.index.get("format") != FORMAT_VERSION:
            raise CorpusError(f"{path} has format {self.index.get('format')!r}; this valle reads format "
                              f"{FORMAT_VERSION}: run `valle data tokenize` again into a new folder")
        self.codec = CodecRecord.from_dict(self.index["codec"])
        self.vocab = PhonemeVocab.from_dict(self.index["vocab"])
        self.ids: list[str] = []
        self.n_frames: list[int] = []
        self.n_phonemes: list[int] = []
        self._where: list[tuple[int, int]] = []
        for s, shard in enumerate(self.index["shards"]):
            self.ids.extend(shard["ids"])
            self.n_frames.extend(shard["n_frames"])
            self.n_phonemes.extend(shard["n_phonemes"])
            self._where.extend((s, j) for j in range(len(shard["ids"])))
        self._position = {id_: i for i, id_ in enumerate(self.ids)}
        self._cache_size = max(1, cache_shards)
        self._open: OrderedDict[int, _OpenShard] = OrderedDict()
        self.alignments = read_frame_track(self.directory, ALIGNMENTS_FILE, self.n_frames, "valle data align")
        self.pitch = read_frame_track(self.directory, PITCH_FILE, self.n_frames, "valle data pitch")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._position

    def __repr__(self) -> str:
        return f"TokenizedCorpus({str(self.directory)!r}, {len(self)} utterances, {len(self.index['shards'])} shards)"

    def languages(self) -> list[str]:
        """The languages its utterances are in, sorted (read from the shards' headers)."""
        return sorted({language for metadata in self._headers() for language in metadata["languages"]})

    def speakers(self) -> list[str]:
        """Each utterance's speaker, in order (read from the shards' headers)."""
        return [speaker for metadata in self._headers() for speaker in metadata["speakers"]]

    def _headers(self) -> list[dict[str, Any]]:
        headers = []
        for entry in self.index["shards"]:
            metadata = read_shard_metadata(self.directory / entry["file"])
            if metadata is None:
                raise CorpusError(f"shard {self.directory / entry['file']} is missing or unreadable; run `valle data "
                                  "tokenize` again with the same arguments to redo it")
            headers.append(metadata)
        return headers

    def position(self, id_: str) -> int:
        try:
            return self._position[id_]
        except KeyError:
            raise KeyError(f"no utterance {id_!r} in {self.directory}") from None

    def __getitem__(self, key: str | int) -> TokenizedUtterance:
        if isinstance(key, str):
            key = self.position(key)
        if not -len(self) <= key < len(self):
            raise IndexError(f"position {key} is outside 0..{len(self) - 1}")
        s, j = self._where[key]
        item, key = self._shard(s).item(j), key % len(self)
        if self.alignments is not None:
            item = replace(item, alignment=self.alignments[key].long())
        return item if self.pitch is None else replace(item, pitch=self.pitch[key].float())

    def _shard(self, s: int) -> _OpenShard:
        shard = self._open.get(s)
        if shard is None:
            entry = self.index["shards"][s]
            path = self.directory / entry["file"]
            if not path.is_file():
                raise CorpusError(f"shard {path} listed in {INDEX_FILE} is missing; run `valle data tokenize` "
                                  "again with the same arguments to redo it")
            shard = _OpenShard(path)
            if shard.metadata.get("ids") != entry["ids"]:
                raise CorpusError(f"{path} does not hold the utterances {INDEX_FILE} lists for it; the folder mixes "
                                  "two runs: run `valle data tokenize` again with the same arguments")
            self._open[s] = shard
            if len(self._open) > self._cache_size:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(s)
        return shard

    def __getstate__(self) -> dict[str, Any]:  # open files stay behind in DataLoader workers
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state


class JoinedCorpus:
    """Several tokenised corpora read as one (`corpus[position]` runs through them in order).

    They must share the codec, and their vocabularies must be versions of one another
    (each a prefix of the longest, as version 1 of version 2), so that an id means the
    same phone in every part; the joined corpus reads with the longest vocabulary.
    """

    def __init__(self, parts: list[TokenizedCorpus]) -> None:
        if not parts:
            raise CorpusError("no tokenised corpus given; pass at least one folder written by `valle data tokenize`")
        self.parts = parts
        self.codec = parts[0].codec
        self.vocab = max((p.vocab for p in parts), key=len)
        for part in parts:
            if part.codec.identity() != self.codec.identity():
                raise CorpusError(f"{part.directory} was tokenised with another codec than {parts[0].directory} "
                                  f"({part.codec.name} against {self.codec.name}); tokenise both with the same codec")
            if not part.vocab.read_by(self.vocab):
                raise CorpusError(f"{part.directory}'s phoneme ids mean other phones than those of the longest "
                                  f"vocabulary given (version {self.vocab.version}); tokenise it again")
        self.n_frames = [n for p in parts for n in p.n_frames]
        self.n_phonemes = [n for p in parts for n in p.n_phonemes]
        self._where = [(k, i) for k, p in enumerate(parts) for i in range(len(p))]

    def __len__(self) -> int:
        return len(self._where)

    def languages(self) -> list[str]:
        return sorted({language for part in self.parts for language in part.languages()})

    def speakers(self) -> list[str]:
        """Each utterance's speaker, named after its folder too: two folders' speakers of one name are two voices."""
        return [f"{part.directory}:{speaker}" for part in self.parts for speaker in part.speakers()]

    def __repr__(self) -> str:
        return f"JoinedCorpus({', '.join(map(repr, self.parts))})"

    def __getitem__(self, position: int) -> TokenizedUtterance:
        if not -len(self) <= position < len(self):
            raise IndexError(f"position {position} is outside 0..{len(self) - 1}")
        k, i = self._where[position]
        return self.parts[k][i]


def write_frame_track(directory: str | Path, name: str, tracks: list[Tensor], dtype: torch.dtype, source: str) -> Path:
    """Store one `[T]` track per utterance (corpus order) beside the shards as `name`, atomically."""
    path = Path(directory) / name
    tensors = {"frames": torch.cat([t.to(dtype) for t in tracks]) if tracks else torch.zeros(0, dtype=dtype),
               "offsets": _offsets([len(t) for t in tracks])}
    with atomic_write(path, "wb") as f:
        f.write(save_safetensors(tensors, metadata={METADATA_KEY: json.dumps({"source": source})}))
    return path


def write_alignments(directory: str | Path, paths: list[Tensor], source: str) -> Path:
    """Store each utterance's frame-by-frame phoneme `paths` (corpus order) beside the shards."""
    return write_frame_track(directory, ALIGNMENTS_FILE, paths, torch.int16, source)


def write_pitch(directory: str | Path, tracks: list[Tensor], source: str) -> Path:
    """Store each utterance's F0 track in Hz (corpus order, 0 where unvoiced) beside the shards."""
    return write_frame_track(directory, PITCH_FILE, tracks, torch.float16, source)


def read_frame_track(directory: Path, name: str, n_frames: list[int], command: str) -> list[Tensor] | None:
    """The folder's track `name`, one `[T]` per utterance, or None where it has none (`command` makes it)."""
    path = directory / name
    if not path.is_file():
        return None
    try:
        tensors = load_safetensors(path.read_bytes())
        frames, offsets = tensors["frames"], tensors["offsets"].tolist()
    except (SafetensorError, OSError, KeyError) as e:
        raise CorpusError(f"{path} is not readable ({e}); delete it and run `{command}` again") from None
    lengths = [b - a for a, b in zip(offsets, offsets[1:])]
    if lengths != n_frames:
        raise CorpusError(f"{path} does not fit the utterances of {directory} (it was made for another tokenisation); "
                          f"delete it and run `{command}` again")
    return [frames[a:b] for a, b in zip(offsets, offsets[1:])]


def open_corpus(directories: list[str | Path]) -> TokenizedCorpus | JoinedCorpus:
    """The tokenised corpus in one folder, or several folders joined."""
    parts = [TokenizedCorpus(d) for d in directories]
    return parts[0] if len(parts) == 1 else JoinedCorpus(parts)
