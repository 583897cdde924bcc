"""handlers/batching.py: merging queued requests into one forward pass, with a stand-in model."""

from __future__ import annotations

import threading

import pytest
import torch

from handlers.batching import Batcher, ServerBusyError, ServerStoppingError


class GatedForward:
    """Multiplies by 10; each call waits for ``gate``, so requests pile up behind a running batch."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.gate = threading.Event()
        self.running = threading.Event()
        self.sizes: list[int] = []
        self._fail_on_call = fail_on_call

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(batch.shape[0]))
        self.running.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if len(self.sizes) == self._fail_on_call:
            raise RuntimeError("the model diverged")
        return batch * 10


def rows(n: int, start: float) -> torch.Tensor:
    return torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1)


@pytest.fixture
def make_batcher():
    batchers: list[tuple[Batcher, GatedForward]] = []

    def make(forward: GatedForward, max_batch: int = 32, max_delay_s: float = 0.0, max_queued: int = 256):
        batcher = Batcher(forward, max_batch=max_batch, max_delay_s=max_delay_s, max_queued_images=max_queued)
        batchers.append((batcher, forward))
        return batcher

    yield make
    for batcher, forward in batchers:
        forward.gate.set()
        batcher.stop()


def test_requests_queued_behind_a_batch_run_together_and_get_their_own_rows(make_batcher):
    forward = GatedForward()
    batcher = make_batcher(forward)
    first = batcher.submit(rows(1, 0))
    assert forward.running.wait(30)
    inputs = [rows(2, 100), rows(1, 200), rows(3, 300)]
    futures = [batcher.submit(x) for x in inputs]
    forward.gate.set()
    assert torch.equal(first.result(30), rows(1, 0) * 10)
    for x, future in zip(inputs, futures, strict=True):
        assert torch.equal(future.result(30), x * 10)
    assert forward.sizes == [1, 6]


def test_a_request_that_does_not_fit_waits_for_the_next_batch_in_order(make_batcher):
    forward = GatedForward()
    batcher = make_batcher(forward, max_batch=4)
    batcher.submit(rows(1, 0))
    assert forward.running.wait(30)
    inputs = [rows(3, 10), rows(2, 20), rows(1, 30)]
    futures = [batcher.submit(x) for x in inputs]
    forward.gate.set()
    for x, future in zip(inputs, futures, strict=True):
        assert torch.equal(future.result(30), x * 10)
    assert forward.sizes == [1, 3, 3]


def test_too_many_queued_images_is_busy(make_batcher):
    forward = GatedForward()
    batcher = make_batcher(forward, max_queued=3)
    batcher.submit(rows(1, 0))  # taken by the running batch: no longer queued
    assert forward.running.wait(30)
    queued = batcher.submit(rows(2, 0))
    with pytest.raises(ServerBusyError, match="3 images"):
        batcher.submit(rows(2, 0))
    forward.gate.set()
    assert queued.result(30).shape == (2, 1)


def test_a_failed_forward_fails_only_its_batch(make_batcher):
    forward = GatedForward(fail_on_call=2)
    batcher = make_batcher(forward)
    batcher.submit(rows(1, 0))
    assert forward.running.wait(30)
    doomed = [batcher.submit(rows(1, 1)), batcher.submit(rows(2, 2))]
    forward.gate.set()
    for future in doomed:
        with pytest.raises(RuntimeError, match="diverged"):
            future.result(30)
    assert torch.equal(batcher.submit(rows(1, 5)).result(30), rows(1, 5) * 10)
    assert forward.sizes == [1, 3, 1]


def test_a_lone_request_does_not_wait_for_the_batch_delay(make_batcher):
    forward = GatedForward()
    forward.gate.set()
    batcher = make_batcher(forward, max_delay_s=600.0)  # waiting for it would outlast the result timeout
    assert torch.equal(batcher.submit(rows(1, 7)).result(30), rows(1, 7) * 10)


def test_while_requests_are_being_prepared_the_batch_waits_for_them(make_batcher):
    forward = GatedForward()
    forward.gate.set()
    batcher = make_batcher(forward, max_batch=2, max_delay_s=600.0)
    batcher.preparing.add(1)  # a second request is being decoded
    first = batcher.submit(rows(1, 0))
    second = batcher.submit(rows(1, 1))
    batcher.preparing.add(-1)
    assert first.result(30).shape == second.result(30).shape == (1, 1)
    assert forward.sizes == [2]


def _batch_of_three_then(batcher: Batcher, forward: GatedForward) -> None:
    """Run a batch of 1, then one of 3 (queued behind it): the last batch held 3 requests."""
    first = batcher.submit(rows(1, 0))
    assert forward.running.wait(30)
    queued = [batcher.submit(rows(1, i)) for i in (1, 2, 3)]
    forward.gate.set()
    for future in (first, *queued):
        future.result(30)
    assert forward.sizes == [1, 3]


def test_after_a_batch_of_three_the_next_batch_waits_for_three_requests(make_batcher):
    """Clients in a loop come back right after their answers: nothing is being decoded yet when
    the first of them arrives, but the batch waits (up to the delay) for as many as last time."""
    forward = GatedForward()
    batcher = make_batcher(forward, max_delay_s=600.0)  # a batch that did not stop waiting would outlast the test
    _batch_of_three_then(batcher, forward)
    lone = batcher.submit(rows(1, 4))
    threading.Event().wait(0.05)  # the next two clients are a moment behind
    rest = [batcher.submit(rows(1, 5)), batcher.submit(rows(1, 6))]
    assert [f.result(30).shape[0] for f in (lone, *rest)] == [1, 1, 1]
    assert forward.sizes == [1, 3, 3]


def test_the_wait_for_returning_clients_ends_at_the_delay(make_batcher):
    forward = GatedForward()
    batcher = make_batcher(forward, max_delay_s=0.05)
    _batch_of_three_then(batcher, forward)
    assert torch.equal(batcher.submit(rows(1, 4)).result(30), rows(1, 4) * 10)  # alone, after the delay
    assert batcher.submit(rows(1, 5)).result(30).shape == (1, 1)  # the last batch held 1: no wait
    assert forward.sizes == [1, 3, 1, 1]


def test_stop_runs_what_was_queued_and_refuses_new_work(make_batcher):
    forward = GatedForward()
    batcher = make_batcher(forward)
    running = batcher.submit(rows(1, 0))
    assert forward.running.wait(30)
    queued = batcher.submit(rows(1, 1))
    stopper = threading.Thread(target=batcher.stop)
    stopper.start()
    forward.gate.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert running.result(30).shape == queued.result(30).shape == (1, 1)
    with pytest.raises(ServerStoppingError):
        batcher.submit(rows(1, 2))


def test_run_calls_a_function_on_the_batching_thread_between_batches(make_batcher):
    forward = GatedForward()
    forward.gate.set()
    batcher = make_batcher(forward)
    assert batcher.run(lambda: threading.current_thread().name) == "batcher"
    with pytest.raises(ZeroDivisionError):
        batcher.run(lambda: 1 / 0)
    assert torch.equal(batcher.submit(rows(1, 3)).result(30), rows(1, 3) * 10)


def test_lists_of_images_are_batched_as_one_list(make_batcher):
    forward = GatedForward()
    batcher = make_batcher(forward)
    seen: list[list[str]] = []

    def forward_list(images: list[str]) -> torch.Tensor:
        seen.append(list(images))
        return forward(torch.zeros(len(images), 1))

    batcher.forward = forward_list
    first = batcher.submit(["a"])
    assert forward.running.wait(30)
    later = [batcher.submit(["b", "c"]), batcher.submit(["d"])]
    forward.gate.set()
    assert first.result(30).shape == (1, 1)
    assert [f.result(30).shape for f in later] == [(2, 1), (1, 1)]
    assert seen == [["a"], ["b", "c", "d"]]
