"""The launcher: turns start invocations into worker processes, cold or warm.

A launcher pops start invocations from its pool's launch queue (shared by every
launcher of the pool, so ``planlab agent`` processes on other hosts take a
share of the work) and hands each to a worker process:

* **warm**: an idle process of the same profile (and limits) that finished its
  last logical worker less than ``keep_alive_s`` ago - it is waiting on its own
  inbox list and starts at once;
* **cold**: a new process, forked from the launcher (which has planlab, numpy,
  redis and cloudpickle imported: ~14 ms instead of ~250 ms for a fresh
  interpreter, ``FACTS.md``), moved into fresh cgroups for its profile's CPU
  quota and memory limit before it runs anything, with BLAS/OpenMP thread pools
  sized to the quota.

The launcher is the parent of its workers, so it learns of a death at once
(``waitpid``): a worker that dies while serving a logical worker (SIGKILL, an
OOM kill) is reported to its run as a ``d|`` event; leases cover hosts that die
altogether.  Control messages (cancel a failed run: kill its processes; stop)
come through a per-launcher list popped before the launch queue.

The process count is not capped here: a static plan's workers may all block
waiting for notifications, so fewer processes than logical workers could
deadlock (the client refuses plans above ``ExecutorSettings.max_processes``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import redis

from executor import keys
from executor.limits import AppliedLimits, ResourceLimiter, apply_thread_limits, cleanup_stale_cgroups

__all__ = ["Launcher", "run_launcher", "new_launcher_id"]

_PR_SET_PDEATHSIG = 1
#: Socket timeout of every executor connection; blocking pops always ask for less.
SOCKET_TIMEOUT_S = 30.0


def new_launcher_id() -> str:
    return f"{socket.gethostname()[:20]}-{os.getpid()}-{secrets.token_hex(3)}"


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; no-op elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


@dataclass
class _Child:
    pid: int
    pool_key: str
    limits: AppliedLimits | None
    serving: tuple[str, str] | None = None  # (run, logical worker) last handed to it
    lease_s: float = 3.0


def _serve_process(url: str, launcher_id: str, profile: str, info: dict[str, Any], idle_key: str,
                   first: dict[str, Any]) -> None:
    """The body of a forked worker process: serve logical workers until keep-alive runs out."""
    from executor.worker import ProcessContext, decode_start, run_logical_worker

    ctx = ProcessContext(url, launcher_id, profile, info)
    inbox = keys.process_inbox(launcher_id, ctx.pid)
    msg, cold = first, True
    while msg is not None:
        try:
            run_logical_worker(ctx, msg, cold)
        except redis.ConnectionError:
            return  # the server went away: nothing left to serve
        cold = False
        keep_alive = float(msg.get("keep_alive_s", 0.0))
        msg = None
        try:
            ctx.client.rpush(idle_key, ctx.pid)
            deadline = time.monotonic() + keep_alive
            got = None
            while got is None and time.monotonic() < deadline:  # in slices: clients time out after 30 s
                got = ctx.client.blpop([inbox], timeout=max(0.01, min(10.0, deadline - time.monotonic())))
            if got is None and ctx.client.lrem(idle_key, 0, ctx.pid) == 0:
                # The launcher took this process from the idle list just now: its message is on the way.
                got = ctx.client.blpop([inbox], timeout=5)
        except redis.RedisError:
            return  # idle: nothing is lost by leaving
        msg = decode_start(got[1]) if got is not None else None


class Launcher:
    """Serves a pool's launch queue on this host.  ``run()`` until a ``stop`` control message."""

    def __init__(self, url: str, *, pool: str = "default", launcher_id: str | None = None,
                 limiter: ResourceLimiter | None = None) -> None:
        self.url = url
        self.pool = pool
        self.id = launcher_id or new_launcher_id()
        self.client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)
        self._limiter = limiter
        self.children: dict[int, _Child] = {}
        self.cold_starts = 0
        self.warm_starts = 0
        self._renewed = 0.0

    @property
    def limiter(self) -> ResourceLimiter:
        if self._limiter is None:
            self._limiter = ResourceLimiter()
        return self._limiter

    # ------------------------------------------------------------------ main loop
    def run(self, stop: threading.Event | None = None) -> None:
        queues = [keys.launcher_control(self.id), keys.launch_queue(self.pool)]
        self.client.sadd(f"pl:launchers:{self.pool}", self.id)
        try:
            while stop is None or not stop.is_set():
                item = self.client.blpop(queues, timeout=0.2)
                self.reap()
                self.renew_leases()
                if item is None:
                    continue
                msg = pickle.loads(item[1])
                if msg["type"] == "stop":
                    break
                if msg["type"] == "cancel":
                    self.cancel(msg["run"], msg.get("pids", []))
                elif msg["type"] == "start":
                    self.start(msg)
        finally:
            self.shutdown()

    def start(self, msg: dict[str, Any]) -> None:
        """Hand a start invocation to a warm idle process of its profile, or fork a cold one."""
        pool_key = (f"{msg['profile']}|{msg.get('cpus')}|{msg.get('memory_mb')}|{msg.get('threads')}|"
                    f"{int(bool(msg.get('limits')))}")
        idle = keys.idle_list(self.id, pool_key)
        data = pickle.dumps(msg, protocol=5)
        self.client.sadd(keys.RunKeys(msg["run"]).launchers, self.id)
        while True:
            raw = self.client.rpop(idle)
            if raw is None:
                break
            pid = int(raw)
            self.reap()
            child = self.children.get(pid)
            if child is not None and child.pool_key == pool_key:
                child.serving = (msg["run"], msg["worker"])
                child.lease_s = float(msg.get("lease_s", 3.0))
                self.client.rpush(keys.process_inbox(self.id, pid), data)
                self.warm_starts += 1
                return
        self._fork(msg, pool_key, idle)

    def _fork(self, msg: dict[str, Any], pool_key: str, idle: str) -> None:
        cpus, memory_mb = msg.get("cpus"), msg.get("memory_mb")
        applied = None
        if msg.get("limits") and (cpus or memory_mb):
            applied = self.limiter.create(cpus, memory_mb, f"{msg['profile']}")
        info = {"cpu_enforced": applied.cpu_enforced if applied else "none",
                "memory_enforced": applied.memory_enforced if applied else "none",
                "cpu_quota_us": applied.quota_us if applied and applied.quota_us else 0,
                "cpu_period_us": applied.period_us if applied and applied.period_us else 0,
                "threads": "none"}
        pid = os.fork()
        if pid == 0:  # the worker process
            code = 0
            try:
                gc.freeze()  # the inherited heap is never garbage: keep collections from walking it
                die_with_parent()
                if applied is not None:
                    applied.join_self()
                if msg.get("limits") and cpus:
                    threads = int(msg.get("threads") or max(1, int(cpus)))
                    info["threads"] = f"{apply_thread_limits(threads)}:{threads}"
                _serve_process(self.url, self.id, msg["profile"], info, idle, msg)
            except BaseException:  # noqa: BLE001 - a worker must never fall back into the launcher's loop
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        self.children[pid] = _Child(pid, pool_key, applied, (msg["run"], msg["worker"]),
                                    float(msg.get("lease_s", 3.0)))
        self.cold_starts += 1

    def renew_leases(self) -> None:
        """Extend the lease of every logical worker a live child serves (a no-op once it finished).

        Run every loop (at least every 0.2 s), renewing at a third of the shortest lease.
        """
        serving = [c for c in self.children.values() if c.serving is not None]
        if not serving:
            return
        now = time.monotonic()
        if now - self._renewed < min(c.lease_s for c in serving) / 3:
            return
        self._renewed = now
        pipe = self.client.pipeline(transaction=False)
        for c in serving:
            pipe.pexpire(keys.RunKeys(c.serving[0]).lease(c.serving[1]), int(c.lease_s * 1000))
        pipe.execute()

    # ------------------------------------------------------------------ deaths and cancels
    def reap(self) -> None:
        """Collect exited workers, release their cgroups, report deaths during work."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            if child.limits is not None:
                with contextlib.suppress(OSError):
                    self.limiter.release(child.limits, kill=True)
            if child.serving is not None and status != 0:
                self._report_death(child, status)

    def _report_death(self, child: _Child, status: int) -> None:
        run, worker = child.serving
        k = keys.RunKeys(run)
        holder = self.client.hget(k.running, worker)
        if holder is None and (os.WIFSIGNALED(status) or not self.client.exists(k.live)):
            return  # it had finished that logical worker and was killed idle, or the run is over
        if holder is not None and not holder.decode().startswith(f"{self.id}:{child.pid}:"):
            return  # another process serves that logical worker now
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"was killed by signal {sig} ({signal.Signals(sig).name})"
            if sig == signal.SIGKILL and child.limits is not None and child.limits.memory_enforced != "none":
                how += (f" - SIGKILL is also how the kernel ends a process that exceeds its memory limit "
                        f"({child.limits.memory_mb:g} MB)")
        else:
            how = f"exited with status {os.WEXITSTATUS(status)}"
        self.client.rpush(k.events, f"d|{worker}|worker process {child.pid} on {socket.gethostname()} {how}")

    def cancel(self, run: str, pids: list[int]) -> None:
        """Kill this launcher's processes serving ``run`` (a failed run), then acknowledge."""
        for pid in pids:
            if pid in self.children:
                self.children[pid].serving = None
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while any(p in self.children for p in pids) and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.002)
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(keys.RunKeys(run).acks, self.id)
        pipe.expire(keys.RunKeys(run).acks, 30)  # a late ack (the client gave up waiting) expires
        pipe.execute()

    def shutdown(self) -> None:
        """Kill every worker process, release every cgroup, leave no key of this launcher behind."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while self.children and time.monotonic() < deadline:
            for pid in list(self.children):
                with contextlib.suppress(ChildProcessError):
                    done, _ = os.waitpid(pid, os.WNOHANG)
                    if not done:
                        continue
                child = self.children.pop(pid)
                if child.limits is not None:
                    with contextlib.suppress(OSError):
                        self.limiter.release(child.limits, kill=True)
            time.sleep(0.002)
        if self._limiter is not None:
            with contextlib.suppress(OSError):
                self._limiter.close(kill=True)
        with contextlib.suppress(redis.RedisError):
            pipe = self.client.pipeline(transaction=False)
            pipe.srem(f"pl:launchers:{self.pool}", self.id)
            for key in self.client.scan_iter(match=f"pl:idle:{self.id}:*", count=1000):
                pipe.delete(key)
            for key in self.client.scan_iter(match=f"pl:proc:{self.id}:*", count=1000):
                pipe.delete(key)
            pipe.delete(keys.launcher_control(self.id))
            pipe.execute()
        with contextlib.suppress(Exception):
            self.client.close()


def run_launcher(url: str, pool: str = "default", launcher_id: str | None = None,
                 parent_death: bool = False) -> None:
    """Entry point of a launcher process (the executor's local one, or ``planlab agent``)."""
    if parent_death:
        die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN) if parent_death else None
    launcher = Launcher(url, pool=pool, launcher_id=launcher_id)
    with contextlib.suppress(Exception):
        cleanup_stale_cgroups(launcher.limiter.support)
    try:
        launcher.run()
    except redis.ConnectionError:
        pass  # the server is gone: shutdown() already ran
    finally:
        sys.stdout.flush()
