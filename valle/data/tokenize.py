"""Tokenise a manifest into shards: phoneme ids of each text, codec codes of each recording.

Utterance i of the manifest goes to shard i // shard_size, so a shard's bytes depend
only on its rows, the codec, the vocabulary and the shard size: never on the number
of workers or on what ran before. Each shard is written atomically and carries the
identity of what made it, which makes a rerun after a crash resume: complete shards of
this manifest, codec and shard size are kept, anything else is redone, and the result
is byte-identical to an uninterrupted run.

Into a folder that holds shards of another codec or shard size the job refuses to
write (tokenise into another folder, or delete that one). Shards of another version
of the same manifest (rows edited, added, removed) are simply redone. The audio files
are not hashed: after replacing recordings in place, delete the folder to redo it.

Rows whose text has nothing to speak, or whose audio is missing, unreadable or silent,
are skipped, counted, and listed with the reason in index.json.
"""

import hashlib
import json
import math
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from valle.audio import ClippingWarning, load_audio
from valle.codec import Codec, CodecRecord, load_codec
from valle.data.manifest import Utterance, read_manifest
from valle.data.shards import FORMAT_VERSION, INDEX_FILE, encode_shard, read_shard, read_shard_metadata, shard_name
from valle.errors import ConfigError, CorpusError, ValleError
from valle.files import atomic_write
from valle.text import PhonemeTokenizer

MAX_CODEBOOK_SIZE = 2**15  # codes are stored as int16


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _vocab_sha256(tokenizer: PhonemeTokenizer) -> str:
    return hashlib.sha256(json.dumps(tokenizer.vocab.to_dict(), ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class _ShardJob:
    index: int
    start: int  # manifest rows [start, start + len(rows))
    rows: tuple[Utterance, ...]
    path: Path
    codec: str
    key: dict[str, Any]  # identity stored in the shard: format, manifest, codec, vocabulary, shard size


# -- the work of one shard (in a worker process, or in this one) -------------------------

_LOADED: dict[str, tuple[Codec, PhonemeTokenizer]] = {}  # per worker process: loaded once


def _worker_tools(job: "_ShardJob") -> tuple[Codec, PhonemeTokenizer]:
    if job.codec not in _LOADED:
        codec = load_codec(job.codec)
        if CodecRecord.of(codec, job.codec).identity() != job.key["codec"]:
            raise ConfigError(f"codec {job.codec} changed while tokenising; run the command again")
        _LOADED[job.codec] = (codec, PhonemeTokenizer())
    return _LOADED[job.codec]


def _init_worker() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ClippingWarning)


def _frames_covering(samples: int, codec: Codec) -> int:
    return max(1, math.ceil(round(samples * codec.frame_rate / codec.sample_rate, 6)))


def _make_shard(job: _ShardJob, tools: tuple[Codec, PhonemeTokenizer] | None = None) -> dict[str, Any]:
    """Tokenise the rows of `job`, write the shard atomically, return its metadata."""
    codec, tokenizer = tools or _worker_tools(job)
    phoneme_dtype = torch.int16 if len(tokenizer.vocab) <= 2**15 else torch.int32
    codes, phonemes, skipped = [], [], []
    fields: dict[str, list] = {"ids": [], "speakers": [], "texts": [], "languages": [], "durations": []}
    for row in job.rows:
        try:
            ids = tokenizer(row.text, row.language)
            samples = load_audio(row.audio, codec.sample_rate)
        except ValleError as e:  # nothing to speak, unknown language, bad audio
            skipped.append({"id": row.id, "reason": str(e)})
            continue
        with torch.inference_mode():
            row_codes = codec.encode(torch.from_numpy(samples)[None])[0]
        codes.append(row_codes[:, :_frames_covering(len(samples), codec)].cpu())
        phonemes.append(torch.tensor(ids))
        for name, value in zip(fields, (row.id, row.speaker, row.text, row.language,
                                        round(len(samples) / codec.sample_rate, 4))):
            fields[name].append(value)
    metadata = {**job.key, "shard": job.index, "rows": [job.start, job.start + len(job.rows)], **fields,
                "n_frames": [c.shape[1] for c in codes], "n_phonemes": [len(p) for p in phonemes], "skipped": skipped}
    data = encode_shard(codes, phonemes, metadata, codec.n_codebooks, phoneme_dtype)
    with atomic_write(job.path, "wb") as f:
        f.write(data)
    return metadata


def _finished(job: _ShardJob) -> dict[str, Any] | None:
    """The metadata of the shard at `job.path` if it is complete and made by this job, else None."""
    metadata = read_shard_metadata(job.path)
    if metadata is None or any(metadata.get(k) != v for k, v in job.key.items()) or metadata.get("shard") != job.index \
            or metadata.get("rows") != [job.start, job.start + len(job.rows)]:
        return None
    try:
        return read_shard(job.path)[0]
    except CorpusError:
        return None


# -- the job -------------------------------------------------------------------------------

@contextmanager
def _single_thread() -> Iterator[None]:
    """One intra-op thread, as in the workers, so that codes do not depend on `workers`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClippingWarning)
            yield
    finally:
        torch.set_num_threads(threads)


def _check_folder(out: Path, key: dict[str, Any]) -> None:
    """Refuse a folder that holds the shards of another codec or shard size."""
    seen = []
    index = out / INDEX_FILE
    if index.is_file():
        try:
            values = json.loads(index.read_text(encoding="utf-8"))
            seen.append((index, {k: v for k, v in values["codec"].items() if k != "name"}, values["shard_size"]))
        except (ValueError, KeyError, TypeError):
            pass  # not ours to judge: it is rewritten at the end
    for path in sorted(out.glob("shard-*.safetensors")):
        metadata = read_shard_metadata(path)
        if metadata is not None and "codec" in metadata:
            seen.append((path, metadata["codec"], metadata.get("shard_size")))
    for path, codec, shard_size in seen:
        if codec != key["codec"]:
            raise ConfigError(f"{out} holds shards made with another codec ({path.name}: {_describe(codec)}; now: "
                              f"{_describe(key['codec'])}); tokenise into another --out, or delete {out} to redo it")
        if shard_size != key["shard_size"]:
            raise ConfigError(f"{out} holds shards of {shard_size} utterances ({path.name}), not {key['shard_size']}; "
                              f"tokenise into another --out, or delete {out} to redo it")


def _describe(codec: Any) -> str:
    try:
        return (f"{codec['n_codebooks']} x {codec['codebook_size']} codes at {codec['frame_rate']:g} Hz, "
                f"weights {codec['weights_sha256'][:12]}")
    except (KeyError, TypeError, ValueError):
        return repr(codec)


def _tidy(out: Path, n_shards: int) -> None:
    """Remove what a killed run left behind: temporary files and shards past the last one."""
    for path in out.glob(".*.tmp"):
        if path.name.startswith((".shard-", f".{INDEX_FILE}.")):
            path.unlink(missing_ok=True)
    for path in out.glob("shard-*.safetensors"):
        number = path.name[len("shard-"):-len(".safetensors")]
        if number.isdigit() and path.name == shard_name(int(number)) and int(number) >= n_shards:
            path.unlink()


def tokenize_manifest(manifest: str | Path, codec: str | Path = "compact", out: str | Path = "shards",
                      shard_size: int = 500, workers: int | None = None) -> Path:
    """Tokenise every row of `manifest` into shards under `out`; returns `out`.

    `codec` is a registered name or a codec folder (see `valle.codec.load_codec`);
    `workers` processes share the shards (default: all cores). Rerunning after a crash
    resumes; see the module documentation for what is kept and what is refused.
    """
    manifest, out = Path(manifest), Path(out)
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be at least 1, not {shard_size}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    rows = _unique_rows(manifest)
    tools = _load_tools(codec)
    record = CodecRecord.of(tools[0], str(codec))
    manifest_sha256 = file_sha256(manifest)
    key = {"format": FORMAT_VERSION, "manifest_sha256": manifest_sha256, "codec": record.identity(),
           "vocab_sha256": _vocab_sha256(tools[1]), "shard_size": shard_size}
    jobs = _plan_shards(rows, out, str(codec), key)

    out.mkdir(parents=True, exist_ok=True)
    _check_folder(out, key)
    metadata = _make_shards(jobs, _kept_shards(out, jobs), tools, workers, len(rows))
    index = _index(metadata, record, tools[1], {"path": str(manifest), "sha256": manifest_sha256, "rows": len(rows)},
                   shard_size)
    with atomic_write(out / INDEX_FILE) as f:
        f.write(_format_index(index))
    return out


def _unique_rows(manifest: Path) -> list[Utterance]:
    """The manifest's rows, refused when empty or when an id repeats (ids name the utterances in the shards)."""
    rows = read_manifest(manifest)
    if not rows:
        raise CorpusError(f"manifest {manifest} has no rows; nothing to tokenise")
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise CorpusError(f"manifest {manifest} lists utterance id {row.id!r} twice; ids must be unique")
        seen.add(row.id)
    return rows


def _load_tools(codec: str | Path) -> tuple[Codec, PhonemeTokenizer]:
    """The codec and the tokenizer, the codec refused when its codes do not fit the shards' int16."""
    loaded = load_codec(codec)
    tools = loaded, PhonemeTokenizer()
    if loaded.codebook_size > MAX_CODEBOOK_SIZE:
        raise ConfigError(f"codec {codec} has {loaded.codebook_size} codes per codebook; shards store int16 codes, "
                          f"which hold at most {MAX_CODEBOOK_SIZE}")
    return tools


def _plan_shards(rows: list[Utterance], out: Path, codec: str, key: dict[str, Any]) -> list[_ShardJob]:
    """One job per shard: row i goes to shard i // shard_size, whatever the workers."""
    size = key["shard_size"]
    return [_ShardJob(s, s * size, tuple(rows[s * size:(s + 1) * size]), out / shard_name(s), codec, key)
            for s in range(math.ceil(len(rows) / size))]


def _kept_shards(out: Path, jobs: list[_ShardJob]) -> list[dict[str, Any] | None]:
    """Each job's shard metadata if a run before this one finished it, else None; leftovers of a killed run removed."""
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        found = list(tqdm(pool.map(_finished, jobs), total=len(jobs), desc="checking shards", unit="shard", disable=None))
    if any(metadata is None for metadata in found):
        (out / INDEX_FILE).unlink(missing_ok=True)  # an index is only ever beside the shards it describes
    _tidy(out, len(jobs))
    return found


def _make_shards(jobs: list[_ShardJob], found: list[dict[str, Any] | None], tools: tuple[Codec, PhonemeTokenizer],
                 workers: int | None, n_rows: int) -> list[dict[str, Any]]:
    """Every shard's metadata in order, making the shards not found: here, or in `workers` processes."""
    metadata = dict(enumerate(found))
    todo = [job for job, kept in zip(jobs, found) if kept is None]
    progress = tqdm(total=n_rows, initial=n_rows - sum(len(job.rows) for job in todo), desc="tokenising",
                    unit="utt", disable=None)
    workers = min(workers or os.cpu_count() or 1, len(todo))
    with progress:
        if workers <= 1:
            with _single_thread():
                for job in todo:
                    metadata[job.index] = _make_shard(job, tools)
                    progress.update(len(job.rows))
        else:
            sizes = {job.index: len(job.rows) for job in todo}
            with _pool(workers) as pool:
                for result in pool.imap_unordered(_make_shard, todo):
                    metadata[result["shard"]] = result
                    progress.update(sizes[result["shard"]])
    return [metadata[s] for s in range(len(jobs))]


def _pool(workers: int) -> Pool:
    """Worker processes started fresh (forkserver where there is one, else spawn), so that none inherits
    this process's torch threads."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__])
    return context.Pool(workers, initializer=_init_worker)


def _index(shards: list[dict[str, Any]], record: CodecRecord, tokenizer: PhonemeTokenizer, manifest: dict[str, Any],
           shard_size: int) -> dict[str, Any]:
    """index.json: what made the shards, their totals, the rows skipped and each shard's utterances."""
    return {
        "format": FORMAT_VERSION,
        "codec": record.to_dict(),
        "vocab": tokenizer.vocab.to_dict(),
        "manifest": manifest,
        "shard_size": shard_size,
        "utterances": sum(len(m["ids"]) for m in shards),
        "frames": sum(sum(m["n_frames"]) for m in shards),
        "seconds": round(sum(sum(m["durations"]) for m in shards), 3),
        "skipped": [skip for m in shards for skip in m["skipped"]],
        "shards": [{"file": shard_name(s), "utterances": len(m["ids"]), "frames": sum(m["n_frames"]),
                    "ids": m["ids"], "n_frames": m["n_frames"], "n_phonemes": m["n_phonemes"]}
                   for s, m in enumerate(shards)],
    }


def _format_index(index: dict[str, Any]) -> str:
    """JSON with one line per top-level field, and per shard and skipped row: readable, and
    small for a corpus of a million utterances."""
    def value(key: str, v: Any) -> str:
        if key in ("shards", "skipped") and v:
            return "[\n  " + ",\n  ".join(json.dumps(e, ensure_ascii=False) for e in v) + "\n ]"
        return json.dumps(v, ensure_ascii=False)

    return "{\n" + ",\n".join(f" {json.dumps(k)}: {value(k, v)}" for k, v in index.items()) + "\n}\n"


def summary(out: str | Path, max_skipped: int = 20) -> str:
    """A few lines on the tokenised corpus in `out`: where it is, its size, what was skipped."""
    out = Path(out)
    index = json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))
    codec = index["codec"]
    lines = [
        f"wrote {len(index['shards'])} shard(s) and {INDEX_FILE} to {out}",
        f"{index['utterances']} utterances, {index['seconds'] / 3600:.2f} hours, {index['frames']:,} frames of "
        f"{codec['n_codebooks']} x {codec['codebook_size']} codes at {codec['frame_rate']:g} Hz ({codec['name']})",
        f"skipped {len(index['skipped'])} of {index['manifest']['rows']} utterances"
        + (":" if index["skipped"] else ""),
    ]
    lines += [f"  {skip['id']}: {skip['reason']}" for skip in index["skipped"][:max_skipped]]
    if len(index["skipped"]) > max_skipped:
        lines.append(f"  ... and {len(index['skipped']) - max_skipped} more, listed in {out / INDEX_FILE}")
    return "\n".join(lines)
