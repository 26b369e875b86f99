"""A background transfer's CPU on a shared host: the worker's thread inside its worker's quota, the server on the host.

The executor runs each worker process in a cgroup of its profile's CPU quota
(:mod:`executor.limits`).  Pre-load's fetching thread and delayed I/O's uploader are
threads of that process, so their CPU comes out of the same quota as the task the
worker runs meanwhile: on a 1-CPU worker running a single-threaded task there is no
room beside it, and the task runs longer by the thread's CPU (the quota shares
itself between the two) however idle the host's other cores are.  The server's side
of the transfer is another process: its CPU takes its share of the host's cores
only, so it slows the run's tasks when the cores are all busy and costs nothing
when one is idle (:class:`simulator.host.SharedCpu` divides them).

The model, per background transfer of ``n`` bytes (``Platform.fetch_*`` /
``upload_*_s_per_byte``):

* the server's ``n x server_s_per_byte`` CPU-seconds: a job of its own on the host's
  cores (one core at most);
* the thread's ``W = n x thread_s_per_byte``: when the worker runs a task whose cap
  (cores) leaves less than one core of the quota free, the task's remaining work grows
  by ``min(W, weight x left)`` (within the quota the two share it in proportion to
  their weights, so the task loses the thread's CPU while it outlasts the thread, and
  its own weighted share of what is left otherwise) and the rest, if any, runs as a job
  of its own; with a core free in the quota (a 2-CPU worker's single-threaded task) or
  no task running, the thread is a job of its own, capped at the quota.

Both per-byte costs are measured on this host by the optimizations benchmark's probe
(``benchmarks/bench_optimizations.py: probe_background``): a task's loss beside a
background fetch with the host's other core idle is the thread's term alone; with the
other core busy the two tasks together lose the thread's and the server's CPU (the
cores do the same work plus the transfer's, every core busy all along).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from simulator.loop import Coroutine, spawn

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run

__all__ = ["charge_transfer", "in_quota"]


def charge_transfer(run: "Run", nbytes: float, upload: bool, owner: Coroutine | None, quota: float,
                    thread_weight: float = 1.0, server_weight: float = 1.0) -> None:
    """On a shared host: the CPU of ``owner``'s background transfer of ``nbytes`` (see the module docstring);
    ``quota`` is the worker's CPUs, the weights the thread's and the server's (a niced upload's are light)."""
    if run.cpu is None or not nbytes > 0:
        return
    platform = run.platform
    server = platform.upload_server_s_per_byte if upload else platform.fetch_server_s_per_byte
    thread = platform.upload_thread_s_per_byte if upload else platform.fetch_thread_s_per_byte
    if server > 0:
        spawn(run.env, cpu_job, run, nbytes * server, 1.0, owner, server_weight)
    if thread > 0:
        in_quota(run, nbytes * thread, owner, quota, thread_weight)


def in_quota(run: "Run", work: float, owner: Coroutine | None, quota: float, weight: float = 1.0) -> None:
    """``work`` CPU-seconds of a thread of ``owner``'s worker process, inside its ``quota`` (module docstring)."""
    cap, left = run.cpu.running(owner) if owner is not None else (0.0, 0.0)
    if cap > 0 and cap + 1.0 > quota + 1e-12:       # no core free beside the task in the quota: they share it
        taken = min(work, weight * left)
        run.cpu.extend(owner, taken)
        work -= taken
    if work > 1e-15:
        spawn(run.env, cpu_job, run, work, min(1.0, quota), owner, weight)


def cpu_job(run: "Run", work: float, cap: float, owner: Coroutine | None, weight: float,
            me: Coroutine) -> Iterator[float | None]:
    """``work`` CPU-seconds on up to ``cap`` cores of ``owner``'s node at ``weight``; nothing waits for it."""
    node_of = getattr(run.cpu, "node_of", None)        # a cluster: the worker's node
    if node_of is not None and owner is not None:
        node_of[me] = node_of.get(owner, 0)
    run.cpu.run(work, cap, me, weight)
    yield
    if node_of is not None:
        node_of.pop(me, None)
