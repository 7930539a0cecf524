"""Admission control: a few syntheses at a time, a bounded queue behind them, and no more.

A request that finds the queue full is turned away at once (503 with Retry-After)
rather than waiting without end; one that waits or runs longer than the timeout gets
504. Work that timed out while queued is dropped; work already running in its thread
cannot be stopped, so it keeps its slot until it finishes and the count never lies.
Work runs in the executor it is given: the server gives the threads that loaded its model.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """The queue is full."""


class Limiter:
    def __init__(self, max_concurrent: int, max_queue: int, executor: Executor | None = None) -> None:
        self.max_concurrent, self.max_queue, self.executor = max_concurrent, max_queue, executor
        self._slots = asyncio.Semaphore(max_concurrent)
        self.admitted = 0  # running + waiting
        self.running = 0

    async def run(self, work: Callable[[], T], timeout: float) -> T:
        """Run `work` in the executor once a slot is free; `Busy` when the queue is full, TimeoutError after `timeout`."""
        if self.admitted >= self.max_concurrent + self.max_queue:
            raise Busy
        self.admitted += 1
        started = asyncio.Event()
        task = asyncio.ensure_future(self._run(work, started))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            if not started.is_set():
                task.cancel()  # still queued: never run it
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody waits for it any more
            raise

    async def enter(self, timeout: float) -> None:
        """Take a slot for work the caller runs itself (a stream), waiting at most `timeout`; give it back with `leave`.

        `Busy` when the queue is full, TimeoutError when no slot came in time.
        """
        if self.admitted >= self.max_concurrent + self.max_queue:
            raise Busy
        self.admitted += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except BaseException:
            self.admitted -= 1
            raise
        self.running += 1

    def leave(self) -> None:
        self.running -= 1
        self.admitted -= 1
        self._slots.release()

    async def _run(self, work: Callable[[], T], started: asyncio.Event) -> T:
        try:
            async with self._slots:
                started.set()
                self.running += 1
                try:
                    return await asyncio.get_running_loop().run_in_executor(self.executor, work)
                finally:
                    self.running -= 1
        finally:
            self.admitted -= 1
