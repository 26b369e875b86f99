"""Replay tasks: tasks without code (WfFormat executions) run as what they recorded.

A replay task burns CPU for its recorded runtime times a scale factor and
produces an output of its recorded size, so a real workflow's shape (widths,
critical path, data volumes) runs for real on real, limited workers.

The runtime is burnt as *CPU time of this thread* (``time.thread_time``), not
wall time: under a 0.5-CPU quota a 1 s task then takes ~2 s of wall time, which
is exactly the slowdown a smaller profile should show.
"""

from __future__ import annotations

import time

__all__ = ["burn_cpu", "payload", "replay_bytes", "read_command"]


def burn_cpu(seconds: float) -> int:
    """Spin until this thread has used ``seconds`` of CPU; returns the loop count (a checksum)."""
    if seconds <= 0:
        return 0
    end = time.thread_time() + seconds
    x, n = 1, 0
    while time.thread_time() < end:
        for _ in range(2000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        n += 1
    return n


def replay_bytes(recorded: float, bytes_scale: float, cap: int) -> int:
    """The replayed size of a recorded output or edge."""
    return int(min(max(0.0, recorded) * bytes_scale, cap))


def payload(nbytes: int) -> bytes:
    """``nbytes`` zero bytes (calloc: allocating them costs almost nothing)."""
    return bytes(max(0, int(nbytes)))


def read_command(key: str, n: int | None, stored: int | None = None) -> tuple:
    """The command reading ``n`` bytes of the stored output ``key`` (``n`` None: all of it, a pickled output).

    ``GET`` when the share is the whole output (``n`` covers its ``stored`` bytes: a replay child reading
    its only out-edge), ``GETRANGE`` of the first ``n`` bytes otherwise.  The server answers a ``GET`` with
    the stored value itself, but copies a range into a reply buffer first: 1 MiB here took the server 74 us
    by ``GETRANGE`` against 2.4 us by ``GET`` (valkey 9, commandstats, load 6.6), the reading client
    0.72 against 0.62 ms - on a hand-off's critical path, between a's upload and b's start.
    """
    if n is None or (stored is not None and n >= stored):
        return ("GET", key)
    return ("GETRANGE", key, 0, n - 1)
