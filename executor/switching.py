"""A short GIL switch interval while a worker's background transfer runs beside its task.

Pre-load and delayed I/O move bytes on a thread of the worker process while the
main thread executes a task.  A socket call releases the GIL for the system call
and must take it back before the next one; when the task is CPU-bound Python (a
replay's ``burn_cpu``, a ``@task`` function) the transfer thread then waits up to
the interpreter's switch interval (5 ms) for every chunk the kernel moves.  Measured
on this 2-CPU host (unix socket, 30 MB, medians of two): a ``GET`` beside a busy
thread took 64-76 ms instead of 15-17 ms idle, a ``SET`` 119-169 ms instead of
23-24 ms; with a 0.2 ms interval 25-35 ms and 25-32 ms (``benchmarks`` issue 17
notes).  That wait is the executor's, not the protocol's: it made delayed I/O and
pre-load slower than no overlap at all on the ladder.

:func:`fast_switching` lowers the interval while at least one transfer thread of
the process is inside it, and restores the previous one when the last leaves
(counted, so nested and concurrent threads are safe).  The task thread then hands
the GIL over at most every :data:`TRANSFER_SWITCH_S` while a transfer waits for
it: a few microseconds per hand-over.

The transfer threads hold it for their whole life, their waits included (a
pre-load thread blocked until its input is stored, the uploader until it is handed
a completion).  The interval only matters to a thread that asks for the GIL: one
blocked in a system call or on a lock does not, so the task beside it runs as under
the usual interval; but when it wakes it asks at once, and under the usual interval
it got the GIL only ~5 ms later, when the task's thread was made to drop it.
Measured in a scratch A/B (``tests/test_transfer_switching.py`` checks only the
interval in effect), a thread woken from a blocking ``recv`` beside a CPU-bound
thread, 40 wake-ups, 4 interleaved pairs, load 2.5: median wake-up to running 5.14-5.16 ms at 5 ms, 0.33-0.38 ms at 0.2 ms; the
CPU-bound thread's work per CPU second beside a blocked thread was the same at both
intervals (medians 4185 and 4278 loops, noise +-15 %).  In the ladder's real runs
(heft, pre-load variants, 48 fetches a run-set, load 2.6-4) a pre-load fetch started a
median 1.5-5.3 ms after its input was stored with the short interval only while bytes
moved, 0.3-0.7 ms with it held; the simulation starts it at once.  The cost: a task whose
own Python threads contend for the GIL switches between them every 0.2 ms while a
transfer thread lives beside it (a worker that pre-loads or uploads lazily).

:func:`yield_to_running_work` lowers a background thread's own CPU priority (Linux
keeps a niceness per thread) by :data:`BACKGROUND_NICE`: delayed I/O's uploader uses
it, so on a busy host a lazy upload - which nothing waits for yet - takes the cores
the executions leave rather than an equal share of them (issue 17: on the 2-CPU host
the lazy uploads of fan-large's small branches slowed the large branch, the critical
one, and delayed I/O cost time instead of saving it).  Measured there (scratch, 2 s
windows, two CPU-bound processes beside a worker whose thread uploads 32 MB in a
loop, medians of 6 interleaved, load 5-6: indicative): with the thread at nice 10 the
other processes did 18 % more work, the worker's own task 3 % less.  The server's
share of an upload (about half its CPU) keeps its priority.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["TRANSFER_SWITCH_S", "BACKGROUND_NICE", "fast_switching", "yield_to_running_work"]

#: The switch interval while a background transfer runs (the interpreter's default is 0.005 s).
TRANSFER_SWITCH_S = 0.0002
#: The niceness a lazy upload's thread adds to its own (Linux CFS: a weight of 1.25 ** -10 = 0.107 of an
#: execution's; the simulator's ``simulator.host.BACKGROUND_UPLOAD_NICE``)
BACKGROUND_NICE = 10

_lock = threading.Lock()
_active = 0
_saved: float | None = None     # the interval to restore, when this module lowered it


@contextmanager
def fast_switching(interval_s: float = TRANSFER_SWITCH_S) -> Iterator[None]:
    """Run the block with the GIL switch interval at most ``interval_s`` (see the module docstring)."""
    global _active, _saved
    with _lock:
        if _active == 0:
            current = sys.getswitchinterval()
            _saved = current if interval_s < current else None
            if _saved is not None:
                sys.setswitchinterval(interval_s)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                # the interpreter keeps whole microseconds and truncates: a hair more gives back the same value
                sys.setswitchinterval(_saved + 1e-9)


def yield_to_running_work(nice: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's own CPU priority by ``nice`` (at most to 19); False where a thread has no
    priority of its own to set (not Linux) or the system refuses: the thread then runs as before."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):
        return False
    return True
