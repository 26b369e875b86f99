"""A forked worker process's life: limited from its first instruction, then warm between logical workers.

A cold start forks the launcher (which has planlab, numpy, redis and
cloudpickle imported: ~14 ms instead of ~250 ms for a fresh interpreter,
``FACTS.md``).  The launcher moves the child into its profile's cgroups while the
child connects and loads its run (:mod:`.cold_limits`; before its first task
runs); the child sizes BLAS/OpenMP thread pools to its CPU quota, and serves its first
logical worker; then it puts itself on its launcher's idle list and waits on its
own inbox for the next one (a warm start) until ``keep_alive_s`` runs out.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import time
import traceback
from typing import Any, Callable, NoReturn

import redis

from executor import keys
from executor.keys import PROCESS_KEY_SLACK_S
from executor.heartbeat import Slot
from executor.limits import AppliedLimits, apply_thread_limits
from executor.launcher.cold_limits import wait_attached
from executor.limits.threads import prepare_thread_controller
from executor.messages import decode_start

__all__ = ["PROCESS_KEY_SLACK_S", "die_with_parent", "limits_info", "become_worker", "lost_connection",
           "preload_for_workers"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; no-op elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def preload_for_workers() -> None:
    """Import, in the launcher, what every forked worker needs: each fork inherits it instead of loading it.

    A cold worker imported the worker modules (compiled from source: this environment
    keeps no bytecode) and threadpoolctl, whose first call also scans the loaded
    libraries - ~20 ms of a cold start here, 95-190 ms at load 7-11.  The launcher
    pays it once.
    """
    import executor.worker  # noqa: F401 - imported for the forks to inherit

    with contextlib.suppress(Exception):   # optional: without it, thread limits are set by environment
        prepare_thread_controller()


def limits_info(applied: AppliedLimits | None) -> dict[str, Any]:
    """What a worker process reports about its limits in its metrics (``threads`` is set once it sized them)."""
    return {"cpu_enforced": applied.cpu_enforced if applied else "none",
            "memory_enforced": applied.memory_enforced if applied else "none",
            "cpu_quota_us": applied.quota_us if applied and applied.quota_us else 0,
            "cpu_period_us": applied.period_us if applied and applied.period_us else 0,
            "threads": "none"}


def become_worker(url: str, launcher_id: str, secret: bytes, first: dict[str, Any], applied: AppliedLimits | None,
                  info: dict[str, Any], idle_key: str, slot: Slot, joined_fd: int | None = None) -> NoReturn:
    """The whole life of a just-forked child: it never returns into the launcher's loop.

    ``joined_fd``: the launcher attaches this process to ``applied``'s cgroups and says so on
    this pipe (:mod:`executor.launcher.cold_limits`); without it the process joins them itself.
    """
    code = 0
    try:
        gc.freeze()  # the inherited heap is never garbage: keep collections from walking it
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the client's: it cancels the run
        limits_in_force = _limit_self(first, applied, info, joined_fd)
        _serve_process(url, launcher_id, first["profile"], info, idle_key, first, secret, slot, limits_in_force)
    except BaseException:  # noqa: BLE001 - a worker must never fall back into the launcher's loop
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _limit_self(first: dict[str, Any], applied: AppliedLimits | None, info: dict[str, Any],
                joined_fd: int | None) -> Callable[[], None] | None:
    """Join the limits and size the thread pools now, or - when the launcher attaches this process
    to its cgroups meanwhile (:mod:`executor.launcher.cold_limits`) - return the wait for that,
    which sizes the pools after it (BLAS libraries start threads to resize: blocked during the
    attach).  The affinity fallback pins the calling thread, so before any other exists."""
    cpus = first.get("cpus")
    threads = int(first.get("threads") or max(1, int(cpus))) if first.get("limits") and cpus else 0

    def size_pools() -> None:
        if threads:
            info["threads"] = f"{apply_thread_limits(threads)}:{threads}"

    if applied is None or joined_fd is None:
        if applied is not None:
            applied.join_self()
        size_pools()
        return None

    def in_force() -> None:
        wait_attached(applied, joined_fd)
        size_pools()
    return in_force


def _serve_process(url: str, launcher_id: str, profile: str, info: dict[str, Any], idle_key: str,
                   first: dict[str, Any], secret: bytes, slot: Slot,
                   limits_in_force: Callable[[], None] | None) -> None:
    """Serve logical workers until keep-alive runs out."""
    from executor.worker import ProcessContext, run_logical_worker

    if limits_in_force is None:
        slot.start_beating()
    else:   # no new thread while the launcher attaches this process: the attach blocks thread creation
        def in_force() -> None:
            limits_in_force()
            slot.start_beating()
    ctx = ProcessContext(url, launcher_id, profile, info, secret, slot, in_force if limits_in_force else None)
    ctx.idle_key = idle_key
    inbox = keys.process_inbox(launcher_id, ctx.pid)
    msg, cold, via = first, True, "fork"
    while msg is not None:
        ctx.joined_idle = False
        try:
            run_logical_worker(ctx, msg, cold, via)
        except redis.ConnectionError as exc:   # the server went away: nothing left to serve (its launcher reports
            # the unfinished logical worker as a death, ProcessPool.reap, with this note as its cause)
            slot.note(lost_connection(exc))
            return
        except BaseException:
            _leave_idle(ctx.client, idle_key, ctx.pid, ctx.joined_idle)   # this process exits now
            raise
        cold = False
        keep_alive = float(msg.get("keep_alive_s", 0.0))
        msg = None
        try:
            # Offered first, then tidied (the collection the next spec load needs), so the next run finds it idle.
            got = _wait_warm(ctx.client, ctx.pid, idle_key, inbox, keep_alive, ctx.tidy, joined=ctx.joined_idle)
        except redis.RedisError as exc:
            slot.note(lost_connection(exc))   # read only if its launcher had handed it a start meanwhile
            return  # idle: nothing is lost by leaving
        if got is not None:
            run_id, via, blob = keys.read_inbox_item(got[1])
            msg = decode_start(ctx.sealer(run_id), blob)


def lost_connection(exc: BaseException) -> str:
    """Why a process ends on a server error, for its launcher's death report: the error and where it was raised
    (the innermost frame: which read or write of which module lost the connection)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" in {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} {frames[-1].name}" if frames else ""
    return f"its connection to the server failed ({type(exc).__name__}: {exc}{where})"


def _leave_idle(client: redis.Redis, idle_key: str, pid: int, joined: bool) -> None:
    """Take this process off its idle list, where its logical worker's last write put it, before it exits with an
    error (best effort: a start handed to it meanwhile is its launcher's to start again, :meth:`ProcessPool.handed`)."""
    if joined:
        with contextlib.suppress(redis.RedisError):
            client.lrem(idle_key, 0, pid)


def _wait_warm(client: redis.Redis, pid: int, idle_key: str, inbox: str, keep_alive: float,
               tidy: Callable[[], None], joined: bool = False) -> Any:
    """Offer this process on the idle list (unless its logical worker's last write did: ``joined``), ``tidy``
    (unless it leaves at once), and wait up to ``keep_alive`` s for a start on its inbox."""
    if not joined:
        pipe = client.pipeline(transaction=False)
        pipe.rpush(idle_key, pid)
        pipe.expire(idle_key, int(keep_alive + PROCESS_KEY_SLACK_S))
        pipe.execute()
    if keep_alive > 0:
        tidy()
    deadline = time.monotonic() + keep_alive
    got = None
    while got is None and time.monotonic() < deadline:  # in slices: clients time out after 30 s
        got = client.blpop([inbox], timeout=max(0.01, min(10.0, deadline - time.monotonic())))
    if got is None and client.lrem(idle_key, 0, pid) == 0:
        # The launcher took this process from the idle list just now: its message is on the way.
        got = client.blpop([inbox], timeout=5)
    return got
