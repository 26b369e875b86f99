"""A worker process's heartbeat and current task, shared with its launcher through memory.

The launcher must know, without a Redis round trip per task, whether each of its
worker processes is alive *and making progress*, and which task it runs:

* the worker writes its current task, that task's deadline (its timeout) and a
  heartbeat timestamp into a page of shared memory (an anonymous ``MAP_SHARED``
  mapping created by the launcher before the fork) - a few hundred nanoseconds;
* a heartbeat thread in the worker refreshes the timestamp every
  :data:`BEAT_INTERVAL_S`, so a process that is stopped (SIGSTOP, a frozen VM)
  stops beating;
* the launcher, every loop (~0.2 s), kills a process whose task ran past its
  deadline or whose heartbeat is older than ``heartbeat_timeout_s``, and reports
  the death with the task's name and the cause; it renews the Redis lease of a
  logical worker only while its process beats (the lease then covers a launcher
  or host that is gone).

Times are ``time.monotonic()`` (CLOCK_MONOTONIC is one clock for all processes
of a host).  A task that holds the GIL longer than ``heartbeat_timeout_s`` in
one C call would miss beats: the timeout's default (10 s) is far above that.
"""

from __future__ import annotations

import _thread
import mmap
import struct
import time

__all__ = ["Slot", "BEAT_INTERVAL_S"]

BEAT_INTERVAL_S = 0.25
_HEAD = struct.Struct("=ddH")          # heartbeat, task deadline (0: none), task name length
_BEAT = struct.Struct("=d")            # each field written alone: the beat thread never overwrites the others
_TASK = struct.Struct("=dH")
_NAME_BYTES = 240
_NOTE = struct.Struct("=H")            # length of the process's last words (:meth:`Slot.note`)
_NOTE_BYTES = 400


class Slot:
    """One worker process's shared page: written by the worker, read by its launcher."""

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, _HEAD.size + _NAME_BYTES + _NOTE.size + _NOTE_BYTES)
        self.beat()

    # ---------------------------------------------------------------- worker side
    def beat(self) -> None:
        _BEAT.pack_into(self._mem, 0, time.monotonic())

    def task(self, name: str, timeout_s: float) -> None:
        """The task that starts now (or the start task of a process being set up), and how long it may run (0: no limit)."""
        raw = name.encode()[:_NAME_BYTES]
        self._mem[_HEAD.size:_HEAD.size + len(raw)] = raw
        now = time.monotonic()
        _TASK.pack_into(self._mem, 8, now + timeout_s if timeout_s > 0 else float("inf"), len(raw))
        _BEAT.pack_into(self._mem, 0, now)

    def idle(self) -> None:
        """No task runs (between tasks that wait for inputs, or between logical workers)."""
        _BEAT.pack_into(self._mem, 8, 0.0)

    def note(self, text: str) -> None:
        """Why this process is about to end on its own (e.g. the exception that lost its server connection).

        Its launcher puts it in the death it reports (:meth:`executor.launcher.pool.ProcessPool.reap`): the
        run's client shows it among the run's deaths, where a line on stderr per process was noise beside
        the client's own error (and, with the connection gone, the process cannot tell the run itself).
        """
        raw = text.encode(errors="replace")[:_NOTE_BYTES]
        at = _HEAD.size + _NAME_BYTES
        self._mem[at + _NOTE.size:at + _NOTE.size + len(raw)] = raw
        _NOTE.pack_into(self._mem, at, len(raw))

    def start_beating(self) -> int:
        """A thread that beats every :data:`BEAT_INTERVAL_S` while the process lives (its ident).

        Started without waiting for it to run (``threading.Thread.start`` waits until the
        new thread is scheduled: 12-33 ms of a cold start at load 13 here); the slot's
        last beat is fresh until then.  The process ends with ``os._exit``, so nothing
        needs to join it.
        """
        def loop() -> None:
            while True:
                time.sleep(BEAT_INTERVAL_S)
                self.beat()

        return _thread.start_new_thread(loop, ())

    # ---------------------------------------------------------------- launcher side
    def read(self) -> tuple[float, float, str | None]:
        """(seconds since the last beat, seconds past the running task's deadline (< 0: not past),
        the running task or None when idle)."""
        beat, deadline, n = _HEAD.unpack_from(self._mem, 0)
        now = time.monotonic()
        if not deadline:
            return now - beat, -1.0, None
        name = bytes(self._mem[_HEAD.size:_HEAD.size + n]).decode(errors="replace")
        return now - beat, now - deadline, name

    def last_note(self) -> str | None:
        """What the process noted before it ended (:meth:`note`), or None."""
        at = _HEAD.size + _NAME_BYTES
        (n,) = _NOTE.unpack_from(self._mem, at)
        return bytes(self._mem[at + _NOTE.size:at + _NOTE.size + n]).decode(errors="replace") if n else None

    def close(self) -> None:
        self._mem.close()
