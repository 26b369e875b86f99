"""Background transfers beside a CPU-bound task: a short GIL switch interval while they run (executor/switching)."""

from __future__ import annotations

import sys
import threading

import pytest

from executor import switching
from executor.switching import TRANSFER_SWITCH_S, fast_switching
from executor.worker_preload import PRELOAD_MIN_BYTES, _Preload, worth_preloading


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


class _Wire:
    """Answers a pre-load thread's round trips; records the switch interval each polled or fetched under."""

    def __init__(self, absent_polls: int = 0) -> None:
        self.absent_polls = absent_polls     # polls that find nothing stored yet
        self.polled: list[float] = []
        self.fetched: list[float] = []

    def call(self, commands: list[tuple]) -> list[int]:
        self.polled.append(sys.getswitchinterval())
        assert all(c[0] == "EXISTS" for c in commands)
        present = int(len(self.polled) > self.absent_polls)
        return [present] * len(commands)

    def get_bulk(self, command: tuple) -> bytearray:
        self.fetched.append(sys.getswitchinterval())
        assert command[0] == "GETRANGE"
        return bytearray(b"x" * (command[3] - command[2] + 1))


def test_a_preload_thread_fetches_under_the_short_interval_and_polls_under_the_usual_one() -> None:
    wire, before = _Wire(absent_polls=2), sys.getswitchinterval()
    thread = _Preload(wire, [("a", "out:a", 3)], threading.Event())   # type: ignore[arg-type]
    thread.start()
    thread.join()
    assert thread.error is None and thread.data == {"a": b"xxx"}
    assert len(wire.polled) == 3 and all(s == pytest.approx(before) for s in wire.polled)
    assert wire.fetched == [pytest.approx(TRANSFER_SWITCH_S)]
    assert sys.getswitchinterval() == before


def test_inputs_one_small_round_trip_fetches_are_not_preloaded() -> None:
    assert not worth_preloading([PRELOAD_MIN_BYTES - 1])
    assert not worth_preloading([PRELOAD_MIN_BYTES // 2, PRELOAD_MIN_BYTES // 2 - 1])
    assert worth_preloading([PRELOAD_MIN_BYTES // 2, PRELOAD_MIN_BYTES // 2])   # together one large fetch
    assert worth_preloading([10, None])          # a coded output: its size is not known, pre-loaded
