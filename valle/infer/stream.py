"""Streaming synthesis: audio chunks while the AR stage is still choosing what follows.

The AR stage runs step by step (`ARModel.decode_steps`), with the same samplers and the same
batches of sentences as whole synthesis, so it chooses the same codes. Whenever enough new
frames exist, the NAR stage fills in the upper levels of a window of them and the codec
decodes the window; both see
`context` frames before the chunk again (decided before, kept as they are) and a short
`lookahead` after it, held back until it exists. The look-ahead's levels are settled with
the chunk, so that the codec decoded the chunk's end from the codes that will follow it
and the next window only adds to them. A chunk is the audio of its own frames; its
first `overlap` frames are cross-faded with what the previous chunk decoded past its end,
so that chunks join without a click. The first chunk is small, so that sound starts early;
each later one is as long as all before it (up to `max_frames`): the player then holds as
much audio as the next chunk takes to make, so that it does not fall silent, and the number
of windows, and with it the total cost, grows only with the logarithm of the length.
The AR stage steps in the caller's thread, only as far as the next chunk needs: run ahead in a
thread of its own, beside the NAR stage and the codec, it made streaming slower on two cores,
not faster (first audio 351 ms against 221 ms, total 1.59x against 1.34x of whole synthesis in
`benchmarks/streaming.py`), the threads contending for the cores and the interpreter.
Sentences follow one another with the pauses and fades of `join_with_pauses`, and every
chunk carries the watermark with its carrier running on from the start of the stream, so
that the detector finds the mark in the streamed audio as in a whole file.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from valle.errors import ConfigError
from valle.watermark import watermark_signal

if TYPE_CHECKING:
    from valle.infer.pipeline import Job, VallE


@dataclass(frozen=True)
class StreamConfig:
    first_frames: int = 10  # the first chunk (200 ms at 50 frames/s)
    max_frames: int = 160  # chunks grow up to this
    lookahead: int = 8  # frames past a chunk that the NAR stage and the codec see before it is decoded
    context: int = 32  # frames before a chunk that they see again (the compact codec's decoder reaches 27)
    overlap: int = 2  # frames of audio cross-faded between chunks

    def __post_init__(self) -> None:
        if not 1 <= self.first_frames <= self.max_frames:
            raise ConfigError(f"stream chunks need 1 <= first_frames <= max_frames, got {self.first_frames}, {self.max_frames}")
        if self.lookahead < max(1, self.overlap) or self.overlap < 0 or self.context < 0:
            raise ConfigError("stream settings need context >= 0, overlap >= 0 and lookahead >= 1 and >= overlap")


class BatchSteps:
    """The AR stage decoding a batch of jobs step by step, batched as whole synthesis batches them.

    Each job's new frames wait here until its stream takes them: the first job's stream
    steps the batch as it needs frames, and the jobs after it have advanced with it by the
    time their turn comes. Batched the same way, they choose the very codes of whole
    synthesis, in any dtype, for about the cost of one job.
    """

    def __init__(self, valle: "VallE", jobs: list["Job"]) -> None:
        self.group = valle.ar.config.group_size
        self.steps = valle.ar.decode_steps(**valle.ar_requests(jobs))
        self.waiting: list[list[torch.Tensor]] = [[] for _ in jobs]
        self.finished = [False] * len(jobs)

    def advance(self) -> None:
        """One decoding step of every job still going."""
        new = next(self.steps, None)
        if new is None:
            self.finished = [True] * len(self.finished)
            return
        for b, frames in enumerate(new):
            if not self.finished[b]:
                self.waiting[b].append(frames)
                self.finished[b] = frames.shape[1] < self.group  # a job still going completes every group it starts

    def take(self, b: int) -> list[torch.Tensor]:
        """Job `b`'s frames since it last took them."""
        frames, self.waiting[b] = self.waiting[b], []
        return frames


class JobStream:
    """The chunks of one AR generation (a sentence, or a continuation), as `chunks()` yields them.

    `steps` and `index`: the job's place in a batch decoded together (default: a batch of its own).
    """

    def __init__(self, valle: "VallE", job: "Job", config: StreamConfig, steps: BatchSteps | None = None,
                 index: int = 0) -> None:
        self.valle, self.job, self.config = valle, job, config
        self.steps, self.index = steps or BatchSteps(valle, [job]), index
        self.levels = valle.ar.config.ar_levels
        self.hop = round(valle.codec.sample_rate / valle.codec.frame_rate)
        prompt = job.prompt_codes
        # Frames whose every level is decided: in continuation the prompt's, which are spoken first.
        self.settled = prompt if job.keep_prompt else prompt.new_zeros(prompt.shape[0], 0)
        self.lower = self.settled[:self.levels]  # the AR's levels of every frame so far
        self.offset = self.settled.shape[1]  # frames before the AR's first new one
        self.tail: np.ndarray | None = None  # audio decoded past the last chunk, to fade into

    def _take(self) -> bool:
        """Add the frames the batch has made for this job since it last looked; whether there were any."""
        frames = self.steps.take(self.index)
        self.lower = torch.cat([self.lower, *frames], dim=1)
        return bool(frames)

    @torch.inference_mode()  # on a generator, PyTorch enters the mode at each resume and leaves it at each yield
    def chunks(self) -> Iterator[tuple[np.ndarray, bool]]:
        """(audio, whether it is the last chunk), in order.

        A chunk is `size` frames (`first_frames`, then as many as all chunks before), or every frame already made
        when more are waiting (a later job of the batch): decoded at once, they cost one pass.
        """
        c, steps = self.config, self.steps
        emitted, size = 0, c.first_frames
        while True:
            ready = self.lower.shape[1] if self._take() else 0  # made while earlier jobs streamed
            while not steps.finished[self.index] and self.lower.shape[1] < emitted + size + c.lookahead:
                steps.advance()
                self._take()
            done = steps.finished[self.index]
            end = self.lower.shape[1] if done else max(emitted + size, ready - c.lookahead)
            if end > emitted:
                yield self._decode(emitted, end, final=done), done
            elif done:  # nothing at all was generated (a look-ahead of 1 or more leaves the last chunk for here)
                yield np.zeros(0, dtype=np.float32), True
            if done:
                return
            emitted, size = end, min(max(c.first_frames, end), c.max_frames)

    def _decode(self, start: int, end: int, final: bool) -> np.ndarray:
        """Audio of frames [start, end), settling their levels; frames before `start` are settled already."""
        c, valle, hop = self.config, self.valle, self.hop
        known, decided = self.lower.shape[1], self.settled.shape[1]
        stop = known if final else min(known, end + c.lookahead)
        low = max(0, start - c.context)
        if stop > decided:  # the NAR stage fills in the window; decided frames stay as they are
            first = max(low, self.offset)  # in continuation, the prompt's frames are not the NAR's to fill
            filled = valle.nar.generate(self.job.phonemes, self.job.prompt_codes, self.lower[:, first:stop],
                                        offset=first - self.offset, settled=self.settled[:, first:decided],
                                        choose=valle.nar_chooser(self.job), languages=self.job.languages)
            codes = torch.cat([self.settled[:, low:first], filled], dim=1)
        else:
            codes = self.settled[:, low:stop]
        if stop > decided:  # the look-ahead is settled too, so that this decode saw the codes that will be spoken
            self.settled = torch.cat([self.settled, codes[:, decided - low:]], dim=1)
        audio = valle.codec.decode(codes[None])[0].float().cpu().numpy()
        chunk = audio[(start - low) * hop:(end - low) * hop].copy()
        if self.tail is not None:  # fade from what the last chunk decoded past its end into this decode
            n = min(len(self.tail), len(chunk))
            ramp = np.linspace(0.0, 1.0, n + 2, dtype=np.float32)[1:-1]
            chunk[:n] = self.tail[:n] * (1 - ramp) + chunk[:n] * ramp
        self.tail = None if final else audio[(end - low) * hop:(end - low + c.overlap) * hop]
        return chunk


def stream_jobs(valle: "VallE", jobs: list["Job"], config: StreamConfig, fade: int, pause: int, watermark: bool,
                watermark_key: int | str, batch_size: int) -> Iterator[np.ndarray]:
    """Every job's chunks in order, `batch_size` jobs decoded together: each sentence faded in and out, pauses
    between them, every chunk watermarked."""
    rate = valle.codec.sample_rate
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
    position = 0  # samples streamed so far: where the watermark's carrier stands
    steps = None
    for i, job in enumerate(jobs):
        if i % batch_size == 0 and valle.frames is None:
            steps = BatchSteps(valle, jobs[i:i + batch_size])
        if i:
            yield np.zeros(pause, dtype=np.float32)
            position += pause
        faded_in = 0
        # A frame stage makes a sentence's frames at once, in far less time than it lasts: one chunk a sentence.
        chunks = JobStream(valle, job, config, steps, i % batch_size).chunks() if valle.frames is None else [
            (valle.speak([job])[0], True)]
        for chunk, last in chunks:
            n = min(len(chunk), fade - faded_in)
            chunk[:n] *= ramp[faded_in:faded_in + n]
            faded_in += n
            if last:
                n = min(fade, len(chunk) // 2)
                chunk[len(chunk) - n:] *= ramp[:n][::-1]
            if watermark and len(chunk):
                chunk = chunk + watermark_signal(chunk, rate, watermark_key, start=position)
            yield chunk
            position += len(chunk)
