"""A background transfer thread woken beside a CPU-bound task runs at once (issue 17, executor/switching).

Under the interpreter's usual 5 ms switch interval a thread woken from a blocking wait
(a pre-load thread's pop, the uploader's queue) got the GIL only when the task's thread
was made to drop it, ~5 ms later; the transfer threads hold the short interval while
they wait, so the wake-up costs a fraction of a millisecond.  Each test wakes the thread
from the CPU-bound main thread (which keeps the GIL and burns on) and measures, on the
thread, how long after the wake-up it ran again: the median of several, well under the
usual interval (a loaded host adds scheduling noise to single wake-ups, not to a median).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from types import SimpleNamespace

import redis

from executor.replay import burn_cpu
from executor.worker_delayed import _Uploader
from executor.worker_preload import _Preload

WAKES = 9
#: the median wake-up must be under this (the usual interval's wake-ups take ~5 ms)
LAG_S = 0.0025


def _burn_between(wake: threading.Event, done: threading.Event, woken_at: list[float]) -> list[float]:
    """Wake the thread ``WAKES`` times from this CPU-bound thread; each wake-up's lag as the thread saw it."""
    lags = []
    for _ in range(WAKES):
        burn_cpu(0.02)                 # the thread is blocked again, the task holds the GIL
        n = len(woken_at)
        at = time.time()
        wake.set()
        burn_cpu(0.02)                 # the task keeps the GIL: the woken thread must be handed it
        assert len(woken_at) > n, "the woken thread did not run within 20 ms of CPU"
        lags.append(woken_at[-1] - at)
    done.set()
    return lags


class _BlockingWire:
    """A pre-load thread's server whose input is never stored: each pop blocks until the test wakes it."""

    def __init__(self, wake: threading.Event, woken_at: list[float]) -> None:
        self.wake, self.woken_at = wake, woken_at

    def call(self, commands: list[tuple]) -> list:
        if commands[0][0] == "DEL":
            return [0] + [0] * (len(commands) - 1)
        self.wake.wait()                  # blocked: releases the GIL, asks for it when set
        self.woken_at.append(time.time())
        self.wake.clear()
        return [(b"wake", b"other")]      # another task's input: it waits again


def test_a_preload_thread_runs_promptly_when_woken_beside_a_cpu_bound_task() -> None:
    before = sys.getswitchinterval()
    wake, woken_at, stop = threading.Event(), [], threading.Event()
    thread = _Preload(_BlockingWire(wake, woken_at), [("a", "out:a", 3)], stop, "wake")  # type: ignore[arg-type]
    thread.start()
    time.sleep(0.05)
    lags = _burn_between(wake, stop, woken_at)
    wake.set()
    thread.join(timeout=5.0)
    assert not thread.is_alive() and sys.getswitchinterval() == before
    assert statistics.median(lags) < LAG_S, lags


class _TimedWire:
    """The uploader's connection: records when each completion is sent."""

    def __init__(self, sent_at: list[float]) -> None:
        self.sent_at = sent_at

    def call(self, commands: list) -> list:
        self.sent_at.append(time.time())
        return [[0]]                      # another process holds the worker: the row is dropped (fenced)


def test_the_uploader_starts_a_lazy_upload_promptly_beside_the_next_cpu_bound_task() -> None:
    before = sys.getswitchinterval()
    owner = SimpleNamespace(protocol=SimpleNamespace(lazy_upload_yields=lambda w: False), worker="w")
    uploader = _Uploader(owner, redis.Redis(unix_socket_path="/nonexistent"))   # never connects: its wire is replaced
    sent_at: list[float] = []
    uploader.wire = _TimedWire(sent_at)          # type: ignore[assignment]
    uploader.start()
    lags = []
    for _ in range(WAKES):
        burn_cpu(0.02)
        uploader.fenced = False
        at = time.time()
        uploader.jobs.put(("t", [], {}, False, None))   # the worker hands a completion over and runs on
        burn_cpu(0.02)
        assert len(sent_at) == len(lags) + 1, "the upload did not start within 20 ms of CPU"
        lags.append(sent_at[-1] - at)
    uploader.jobs.put(None)
    uploader.join(timeout=5.0)
    assert not uploader.is_alive() and sys.getswitchinterval() == before
    assert statistics.median(lags) < LAG_S, lags
