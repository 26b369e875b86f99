"""Background transfers beside a CPU-bound task: a short GIL switch interval while they run (executor/switching)."""

from __future__ import annotations

import sys
import threading

import pytest

from executor import switching
from executor.switching import TRANSFER_SWITCH_S, fast_switching
from executor.worker_preload import _Preload


def test_the_interval_is_short_inside_and_restored_after_the_last_transfer_leaves() -> None:
    before = sys.getswitchinterval()
    with fast_switching():
        assert sys.getswitchinterval() == pytest.approx(TRANSFER_SWITCH_S)
        with fast_switching():                        # a second transfer thread of the same process
            assert sys.getswitchinterval() == pytest.approx(TRANSFER_SWITCH_S)
        assert sys.getswitchinterval() == pytest.approx(TRANSFER_SWITCH_S)   # the first is still inside
    assert sys.getswitchinterval() == before and switching._active == 0


def test_an_interval_already_shorter_is_kept_and_an_error_still_restores() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.0001)
        with fast_switching():
            assert sys.getswitchinterval() == pytest.approx(0.0001)
        try:
            with fast_switching():
                raise ValueError("transfer failed")
        except ValueError:
            pass
        assert sys.getswitchinterval() == pytest.approx(0.0001) and switching._active == 0
    finally:
        sys.setswitchinterval(before)


class _Client:
    """Answers a pre-load thread's pipelines; records the switch interval the transfer ran under."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self.ops: list[tuple] = []

    def pipeline(self, transaction: bool = False) -> "_Client":
        self.ops = []
        return self

    def exists(self, key: str) -> None:
        self.ops.append(("exists", key))

    def getrange(self, key: str, a: int, b: int) -> None:
        self.ops.append(("get", key, b - a + 1))

    def execute(self) -> list:
        self.seen.append(sys.getswitchinterval())
        return [1 if op[0] == "exists" else b"x" * op[2] for op in self.ops]


def test_a_preload_thread_fetches_under_the_short_interval() -> None:
    client, before = _Client(), sys.getswitchinterval()
    thread = _Preload(client, [("a", "out:a", 3)], threading.Event())   # type: ignore[arg-type]
    thread.start()
    thread.join()
    assert thread.error is None and thread.data == {"a": b"xxx"}
    assert client.seen and all(s == pytest.approx(TRANSFER_SWITCH_S) for s in client.seen)
    assert sys.getswitchinterval() == before
