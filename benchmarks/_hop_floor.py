"""The floor under the alternating chain's hop (issue 18): two processes pass a token through the same server.

A hop of ``chain/2 workers alternating`` (``benchmarks/bench_executor.py``) is worker
A's completion reaching worker B, which is blocked on its inbox: A writes its commit
with its own next ``BLPOP`` in one write, the server runs the commit and answers B's
pop, and B wakes.  Here two forked processes do only that, over the workers' own
connection class (:class:`executor.wire.Wire`) and their spin rule
(:func:`executor.wire.spin_budget`), on the executor's server: each hop is one write of
the push and the next pop, the pop's reply wakes the other side.  No task, no hooks,
no trace: what is left of a hop when the executor's Python work per task is taken away.

Two kinds of push:

* ``commit`` - the executor's own commit script (:mod:`executor.scripts`) with what a
  chain's completion carries: a small output stored (``S``) and a note pushed on the
  other side's inbox (``P``), fenced by the same holder check;
* ``plain`` - a bare ``RPUSH`` of the note: the server's least work per hop.

The chain's per-task overhead minus this floor is the executor's own cost per hop; a
floor close to the chain's figure says the hop is the host's wake-ups and the server's
step, not planlab's code.  Measured interleaved with the chain's runs, so both share the
host's load.
"""

from __future__ import annotations

import os
import time
import uuid

from executor.keys import RunKeys
from executor.scripts import Scripts
from executor.server.urls import client_from_url
from executor.wire import Wire, packed

__all__ = ["hop_floor_us", "MODES"]

MODES = ("commit", "plain")

#: what a 1k alternating chain's note and stored output weigh here (a pickled int, sealed; a sealed note)
_NOTE, _VALUE = b"n" * 120, b"v" * 60


def _side(url: str, run: str, me: str, other: str, hops: int, spin_s: float, mode: str, first: bool) -> float:
    """One process's part: ``hops`` tokens received and passed on; the seconds they took."""
    client = client_from_url(url)
    wire = Wire(client)
    keys, scripts = RunKeys(run), Scripts(client)
    holder = f"{me}@{os.getpid()}"
    wire.call([("HSET", keys.running, me, holder), ("PEXPIRE", keys.running, 60_000)])
    pop = packed(("BLPOP", keys.inbox(me), 5))

    def push(i: int) -> tuple:
        if mode == "plain":
            return ("RPUSH", keys.inbox(other), _NOTE)
        task = f"{me}{i}"
        return scripts.commit(keys, task, me, holder, 60_000, "", b"", [],
                              ["S", keys.out(task), _VALUE, "P", keys.inbox(other), _NOTE])

    if first:
        wire.call([push(-1)])
    wire.send([pop])
    started = time.perf_counter()
    for i in range(hops):
        wire.spin_for_reply(spin_s)
        if wire.read(1)[0] is None:
            raise RuntimeError("the other side stopped passing the token")
        wire.send([push(i), pop])   # the next pop rides in the push's write, as a worker's commit carries it
        wire.spin_for_reply(spin_s)
        reply = wire.read(1)[0]
        if mode == "commit" and reply[0] != 1:
            raise RuntimeError(f"the commit script refused a hop: {reply!r}")
    elapsed = time.perf_counter() - started
    wire.reset()
    return elapsed


def hop_floor_us(url: str, hops: int = 1000, spin_s: float = 0.0, mode: str = "commit") -> float:
    """Microseconds per hop of two forked processes passing a token ``hops`` times each way through the server at
    ``url`` (``mode``: what each hop pushes, see the module docstring).  The run's keys are removed afterwards."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: one of {', '.join(MODES)}")
    if hops < 1:
        raise ValueError(f"hops {hops}: at least 1")
    run = f"floor-{uuid.uuid4().hex[:12]}"
    read_end, write_end = os.pipe()
    children = []
    for me, other, first in (("a", "b", False), ("b", "a", True)):
        pid = os.fork()
        if pid == 0:   # a child: its seconds (or -1 on any error) down the pipe, then out without cleanup
            code = 1
            try:
                seconds = _side(url, run, me, other, hops, spin_s, mode, first)
                code = 0
            except BaseException:
                seconds = -1.0
            finally:
                os.write(write_end, f"{seconds}\n".encode())
                os._exit(code)
        children.append(pid)
    os.close(write_end)
    failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    with os.fdopen(read_end) as pipe:
        seconds = [float(line) for line in pipe.read().split()]
    client = client_from_url(url)
    keys = RunKeys(run)
    stale = [keys.running, keys.done, keys.inbox("a"), keys.inbox("b"), *client.scan_iter(match=keys.out("*"))]
    client.delete(*stale)
    if failed or len(seconds) != 2 or min(seconds) < 0:
        raise RuntimeError(f"the hop floor's processes failed ({mode}, {hops} hops)")
    return max(seconds) / (2 * hops) * 1e6
