"""Dynamic batching: forward passes on one thread, merging the requests that are waiting.

Requests are decoded on their connection's thread, then ``Batcher.submit`` queues their images (a
tensor whose first dimension counts them, or a list). The batching thread takes every request
already queued (up to ``max_batch`` images), and waits up to ``max_delay_s`` for more only while
other requests are still being decoded (the ``preparing`` gauge) or while it holds fewer requests
than the last batch did: clients that just got their answers send their next request at once
(boto3 clients in a loop, the Lambda functions in front of an endpoint under load), and without
the wait a batch left before they were back. So a lone client never waits, and 8 clients in a
loop get batches of 8 instead of alternating 7 and 1 (a batch of 1 costs a whole ResNet50 forward
pass for one image): 31-33 img/s instead of 29-30 at 8 clients on the 2-core machine, 5 ms delay.

The batching thread is meant to be the only thread of the process that runs parallel torch
operations (``Batcher.run`` runs the model loading there too): libgomp, torch's OpenMP, keeps a
team of worker threads per calling thread, and once the process manages more threads than it has
cores it stops spinning at its barriers and sleeps instead, which made every ResNet50 forward
pass ≈ 25 % slower on the 2-core machine (38 → 49 ms) as soon as a second thread had run one
parallel op (benchmarks/README.md).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class ServerBusyError(Exception):
    """Too many queued images: the client should retry (503)."""


class ServerStoppingError(Exception):
    """The server is shutting down; queued work is refused (503)."""


class Gauge:
    """A thread-safe counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, delta: int, limit: int | None = None) -> bool:
        """Add ``delta`` unless that would exceed ``limit``; returns whether it was added."""
        with self._lock:
            if limit is not None and self._value + delta > limit:
                return False
            self._value += delta
            return True

    @property
    def value(self) -> int:
        return self._value


@dataclass
class _Work:
    batch: torch.Tensor | Sequence[Any]
    future: Future = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.batch)


@dataclass
class _Call:
    """A function to run on the batching thread (``Batcher.run``)."""

    fn: Callable[[], Any]
    future: Future = field(default_factory=Future)


def _join(items: list[_Work]) -> torch.Tensor | list[Any]:
    if len(items) == 1:
        return items[0].batch  # type: ignore[return-value]
    if isinstance(items[0].batch, torch.Tensor):
        return torch.cat([w.batch for w in items])  # type: ignore[misc]
    return [x for w in items for x in w.batch]


class Batcher:
    """Runs ``forward`` on one thread over the concatenation of the requests that are waiting.

    ``forward`` maps an ``(N, ...)`` batch (or a list of N images) to ``(N, ...)`` rows; each
    request's future gets its rows. ``forward`` may be replaced before the first ``submit`` (e.g.
    once ``run`` has loaded the model on this thread).
    """

    def __init__(
        self,
        forward: Callable[[Any], torch.Tensor],
        *,
        max_batch: int,
        max_delay_s: float,
        max_queued_images: int,
    ) -> None:
        self.forward = forward
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._max_queued = max_queued_images
        self._queue: queue.SimpleQueue[_Work | _Call | None] = queue.SimpleQueue()
        self._queued = Gauge()
        self.preparing = Gauge()  # requests being decoded: worth a short wait for them
        self._last_requests = 1  # how many requests the last batch held: their clients may be back
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """Run ``fn`` on the batching thread (between batches) and return its result or raise its error."""
        if self._stopped.is_set():
            raise ServerStoppingError("the server is shutting down")
        call = _Call(fn)
        self._queue.put(call)
        return call.future.result(timeout=timeout_s)

    def submit(self, batch: torch.Tensor | Sequence[Any]) -> Future:
        if self._stopped.is_set():
            raise ServerStoppingError("the server is shutting down")
        work = _Work(batch)
        if not self._queued.add(work.size, limit=self._max_queued):
            raise ServerBusyError(f"more than {self._max_queued} images queued; retry shortly")
        self._queue.put(work)
        return work.future

    def stop(self) -> None:
        """Refuse new work, run what was already queued, and end the thread."""
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _collect(self, first: _Work) -> tuple[list[_Work], _Work | _Call | None]:
        """The first item plus whatever fits in the batch; returns the item that did not fit."""
        items, size = [first], first.size
        deadline = time.monotonic() + self._max_delay_s
        while size < self._max_batch:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.preparing.value == 0 and len(items) >= self._last_requests):
                    break
                try:
                    work = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if work is None:  # stop sentinel: put it back for the main loop
                self._queue.put(None)
                break
            if isinstance(work, _Call) or size + work.size > self._max_batch:
                return items, work
            items.append(work)
            size += work.size
        return items, None

    def _run(self) -> None:
        carry: _Work | _Call | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                break
            if isinstance(first, _Call):
                try:
                    first.future.set_result(first.fn())
                except Exception as exc:  # handed to the caller of run()
                    first.future.set_exception(exc)
                continue
            items, carry = self._collect(first)
            self._last_requests = len(items)
            self._queued.add(-sum(w.size for w in items))
            try:
                rows = self.forward(_join(items))
            except Exception as exc:  # the model failed: every request of this batch gets the error
                for work in items:
                    work.future.set_exception(exc)
                continue
            start = 0
            for work in items:
                work.future.set_result(rows[start : start + work.size])
                start += work.size
        while True:  # refuse whatever is left
            try:
                left = carry or self._queue.get_nowait()
            except queue.Empty:
                return
            carry = None
            if left is not None:
                left.future.set_exception(ServerStoppingError("the server is shutting down"))
