"""The launcher: turns start invocations into worker processes, cold or warm.

A launcher serves the launch queues of the runs it is told about - an
executor's local launcher only its own executor's runs (a ``serve`` control
message per run), a ``planlab agent`` every live run of its pool (the pool's
registry of runs) - so concurrent runs on one server never take, or kill, each
other's workers.  It hands each start to a worker process:

* **warm**: an idle process of the same profile (and limits) that finished its
  last logical worker less than ``keep_alive_s`` ago - it is waiting on its own
  inbox list and starts at once;
* **cold**: a new process, forked from the launcher (which has planlab, numpy,
  redis and cloudpickle imported: ~14 ms instead of ~250 ms for a fresh
  interpreter, ``FACTS.md``), moved into fresh cgroups for its profile's CPU
  quota and memory limit before it runs anything, with BLAS/OpenMP thread pools
  sized to the quota.

The launcher is the parent of its workers, so it learns of a death at once
(``waitpid``).  Whether a dead process was serving a logical worker is decided
from the run's claims: a process that died before it claimed its start
(killed or out of memory during its start), or while it held its logical
worker, is reported to the run as a ``d|`` event naming the task it ran (from
the shared heartbeat slot, :mod:`executor.heartbeat`); one that finished its
work and died idle is not.  Every loop the launcher also kills processes whose
task ran past its timeout or whose heartbeat stopped, and renews the leases of
the live ones.  Control messages (serve a run, cancel a failed run: kill its
processes; stop) come through a per-launcher list popped before the launch queues.
Every message is authenticated before it is unpickled (:mod:`executor.auth`).

The process count is not capped here: a static plan's workers may all block
waiting for notifications, so fewer processes than logical workers could
deadlock (the client refuses plans above ``ExecutorSettings.max_processes``).
"""

from __future__ import annotations

import contextlib
import gc
import os
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
from executor.auth import Forged, RunSealer
from executor.heartbeat import Slot
from executor.limits import AppliedLimits, ResourceLimiter, apply_thread_limits, cleanup_stale_cgroups
from executor.messages import control_sealer, decode_control, decode_start

__all__ = ["Launcher", "run_launcher", "new_launcher_id"]

_PR_SET_PDEATHSIG = 1
#: Socket timeout of every executor connection; blocking pops always ask for less.
SOCKET_TIMEOUT_S = 30.0
#: A launcher's heartbeat key lives this long (renewed every loop of at most 0.2 s).
LAUNCHER_TTL_S = 5.0
#: How often an agent re-reads its pool's runs, and any launcher drops runs that ended.
REFRESH_S = 0.5
#: Process inboxes and idle lists expire when nobody renews them for this long beyond keep-alive.
PROCESS_KEY_SLACK_S = 60.0


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
    slot: Slot
    serving: tuple[str, str, int, str] | None = None  # (run, logical worker, generation, start task)
    lease_s: float = 3.0
    heartbeat_timeout_s: float = 10.0
    cause: str | None = None  # why the launcher killed it (a timeout, a stopped heartbeat)
    task: str | None = None   # the task it ran when it was killed


def _serve_process(url: str, launcher_id: str, profile: str, info: dict[str, Any], idle_key: str,
                   first: dict[str, Any], secret: bytes, slot: Slot) -> None:
    """The body of a forked worker process: serve logical workers until keep-alive runs out."""
    from executor.worker import ProcessContext, run_logical_worker

    slot.start_beating()
    ctx = ProcessContext(url, launcher_id, profile, info, secret, slot)
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
            pipe = ctx.client.pipeline(transaction=False)
            pipe.rpush(idle_key, ctx.pid)
            pipe.expire(idle_key, int(keep_alive + PROCESS_KEY_SLACK_S))
            pipe.execute()
            deadline = time.monotonic() + keep_alive
            got = None
            while got is None and time.monotonic() < deadline:  # in slices: clients time out after 30 s
                got = ctx.client.blpop([inbox], timeout=max(0.01, min(10.0, deadline - time.monotonic())))
            if got is None and ctx.client.lrem(idle_key, 0, ctx.pid) == 0:
                # The launcher took this process from the idle list just now: its message is on the way.
                got = ctx.client.blpop([inbox], timeout=5)
        except redis.RedisError:
            return  # idle: nothing is lost by leaving
        if got is not None:
            run_id, _, blob = got[1].partition(b"\n")
            msg = decode_start(ctx.sealer(run_id.decode()), blob)


class Launcher:
    """Serves launch queues on this host.  ``run()`` until a ``stop`` control message.

    ``serve_pool``: serve every live run registered in ``pool`` (a ``planlab agent``);
    otherwise only the runs named by ``serve`` control messages (an executor's own launcher).
    """

    def __init__(self, url: str, secret: bytes, *, pool: str = "default", launcher_id: str | None = None,
                 limiter: ResourceLimiter | None = None, serve_pool: bool = False) -> None:
        self.url = url
        self.pool = pool
        self.id = launcher_id or new_launcher_id()
        self.client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)
        self._secret = secret
        self._ctl = control_sealer(secret, self.id)
        self._sealers: dict[str, RunSealer] = {}
        self._limiter = limiter
        self.serve_pool = serve_pool
        self.runs: dict[str, float] = {}          # run -> when it was added
        self.children: dict[int, _Child] = {}
        self.cold_starts = 0
        self.warm_starts = 0
        self.host = socket.gethostname()
        self._renewed = 0.0
        self._refreshed = 0.0

    @property
    def limiter(self) -> ResourceLimiter:
        if self._limiter is None:
            self._limiter = ResourceLimiter()
        return self._limiter

    def sealer(self, run: str) -> RunSealer:
        if run not in self._sealers:
            self._sealers[run] = RunSealer(self._secret, run)
        return self._sealers[run]

    # ------------------------------------------------------------------ main loop
    def run(self, stop: threading.Event | None = None) -> None:
        control = keys.launcher_control(self.id)
        try:
            while stop is None or not stop.is_set():
                self._housekeeping()
                queues = [control, *(keys.RunKeys(r).launch for r in self.runs)]
                item = self.client.blpop(queues, timeout=0.2)
                if item is None:
                    continue
                key = item[0].decode()
                if key == control:
                    if self._control(item[1]) == "stop":
                        break
                else:
                    self._start_from(key[len("pl:{"):key.index("}")], item[1])
        finally:
            self.shutdown()

    def _housekeeping(self) -> None:
        self.reap()
        self.check_children()
        self.renew_leases()
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_S:
            self._refreshed = now
            self._refresh_runs()

    def _control(self, blob: bytes) -> str:
        try:
            msg = decode_control(self._ctl, blob)
        except Forged as exc:
            print(f"planlab launcher {self.id}: ignored a control message: {exc.one_line()}", file=sys.stderr)
            return "forged"
        if msg["type"] == "serve":
            self.runs.setdefault(msg["run"], time.monotonic())
        elif msg["type"] == "cancel":
            self.cancel(msg["run"], msg.get("pids", []))
        return msg["type"]

    def _start_from(self, run: str, blob: bytes) -> None:
        try:
            msg = decode_start(self.sealer(run), blob)
        except (Forged, ValueError) as exc:
            # Never unpickled.  Tell the run (plain text: nothing to unpickle) so its client fails clearly.
            text = exc.one_line() if isinstance(exc, Forged) else str(exc)
            print(f"planlab launcher {self.id}: refused a start message of run {run}: {text}", file=sys.stderr)
            with contextlib.suppress(redis.RedisError):
                events = keys.RunKeys(run).events
                self.client.rpush(events, f"a|{self.id} on {self.host}")
                self.client.expire(events, 3600)
            return
        self.start(msg, blob)

    def _refresh_runs(self) -> None:
        """Agents learn their pool's new runs; every launcher forgets runs that are over."""
        if self.serve_pool:
            for run in self.client.smembers(keys.pool_runs(self.pool)):
                self.runs.setdefault(run.decode(), time.monotonic())
        self.client.set(keys.launcher_alive(self.id), self.pool, px=int(LAUNCHER_TTL_S * 1000))
        if not self.runs:
            return
        names = list(self.runs)
        pipe = self.client.pipeline(transaction=False)
        for run in names:
            pipe.exists(keys.RunKeys(run).live)
        for run, live in zip(names, pipe.execute()):
            if not live and time.monotonic() - self.runs[run] > REFRESH_S:
                del self.runs[run]
                self._sealers.pop(run, None)
                if self.serve_pool:
                    self.client.srem(keys.pool_runs(self.pool), run)   # sweep a run whose client is gone

    def start(self, msg: dict[str, Any], blob: bytes) -> None:
        """Hand a start invocation to a warm idle process of its profile, or fork a cold one."""
        pool_key = (f"{msg['profile']}|{msg.get('cpus')}|{msg.get('memory_mb')}|{msg.get('threads')}|"
                    f"{int(bool(msg.get('limits')))}")
        idle = keys.idle_list(self.id, pool_key)
        run_keys = keys.RunKeys(msg["run"])
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(run_keys.launchers, self.id)
        pipe.expire(run_keys.launchers, 86400)
        pipe.execute()
        serving = (msg["run"], msg["worker"], int(msg.get("gen", 0)), msg["task"])
        while True:
            raw = self.client.rpop(idle)
            if raw is None:
                break
            pid = int(raw)
            self.reap()
            child = self.children.get(pid)
            if child is not None and child.pool_key == pool_key:
                self._assign(child, msg, serving)
                inbox = keys.process_inbox(self.id, pid)
                pipe = self.client.pipeline(transaction=False)
                pipe.rpush(inbox, msg["run"].encode() + b"\n" + blob)
                pipe.expire(inbox, int(PROCESS_KEY_SLACK_S))
                pipe.execute()
                self.warm_starts += 1
                return
        self._fork(msg, pool_key, idle, serving)

    @staticmethod
    def _assign(child: _Child, msg: dict[str, Any], serving: tuple[str, str, int, str]) -> None:
        child.serving = serving
        child.lease_s = float(msg.get("lease_s", 3.0))
        child.heartbeat_timeout_s = float(msg.get("heartbeat_timeout_s", 10.0))
        child.slot.task(msg["task"], 0.0)   # until it claims: a death now is a death during its start
        child.slot.beat()

    def _fork(self, msg: dict[str, Any], pool_key: str, idle: str, serving: tuple[str, str, int, str]) -> None:
        cpus, memory_mb = msg.get("cpus"), msg.get("memory_mb")
        applied = None
        if msg.get("limits") and (cpus or memory_mb):
            applied = self.limiter.create(cpus, memory_mb, f"{msg['profile']}")
        info = {"cpu_enforced": applied.cpu_enforced if applied else "none",
                "memory_enforced": applied.memory_enforced if applied else "none",
                "cpu_quota_us": applied.quota_us if applied and applied.quota_us else 0,
                "cpu_period_us": applied.period_us if applied and applied.period_us else 0,
                "threads": "none"}
        slot = Slot()
        child = _Child(0, pool_key, applied, slot)
        self._assign(child, msg, serving)
        pid = os.fork()
        if pid == 0:  # the worker process
            code = 0
            try:
                gc.freeze()  # the inherited heap is never garbage: keep collections from walking it
                die_with_parent()
                signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the client's: it cancels the run
                if applied is not None:
                    applied.join_self()
                if msg.get("limits") and cpus:
                    threads = int(msg.get("threads") or max(1, int(cpus)))
                    info["threads"] = f"{apply_thread_limits(threads)}:{threads}"
                _serve_process(self.url, self.id, msg["profile"], info, idle, msg, self._secret, slot)
            except BaseException:  # noqa: BLE001 - a worker must never fall back into the launcher's loop
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        child.pid = pid
        self.children[pid] = child
        self.cold_starts += 1

    def check_children(self) -> None:
        """Kill a process whose task ran past its timeout or whose heartbeat stopped (reported when reaped)."""
        for child in list(self.children.values()):
            if child.serving is None or child.cause is not None:
                continue
            since_beat, past_deadline, task = child.slot.read()
            if past_deadline > 0:
                child.cause = f"task {task!r} ran past its timeout (killed by its launcher)"
            elif since_beat > child.heartbeat_timeout_s:
                child.cause = (f"its heartbeat stopped for {since_beat:.1f} s (a stopped or frozen process; "
                               "killed by its launcher)")
            else:
                continue
            child.task = task
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)

    def renew_leases(self) -> None:
        """Extend the lease of every logical worker a live, beating child serves (a no-op once it finished).

        Run every loop (at least every 0.2 s), renewing at a third of the shortest lease.
        """
        serving = [c for c in self.children.values() if c.serving is not None and c.cause is None
                   and c.slot.read()[0] <= c.heartbeat_timeout_s]
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
            if child.serving is not None and (status != 0 or child.cause):
                self._report_death(child, status)
            child.slot.close()

    def _report_death(self, child: _Child, status: int) -> None:
        """Report a death that cost work: before its claim, or while it held its logical worker."""
        run, worker, gen, start_task = child.serving
        k = keys.RunKeys(run)
        mine = f"{self.id}:{child.pid}:{self.host}"
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(k.live)
        pipe.hget(k.claims, f"{worker}#{gen}")
        pipe.hget(k.running, worker)
        live, claim, holder = pipe.execute()
        if not live:
            return
        if claim is not None and (claim.decode() != mine or (holder or b"").decode() != mine):
            return  # another process serves that generation, or this one finished it and died idle
        _, _, task = child.slot.read()
        task = child.task or task or (start_task if claim is None else "")
        how = child.cause or self._describe_status(child, status)
        when = "during its start" if claim is None else "while it ran"
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(k.events, f"d|{worker}|{gen}|{task}|worker process {child.pid} on {self.host} {how} ({when})")
        pipe.expire(k.events, 86400)
        pipe.execute()

    @staticmethod
    def _describe_status(child: _Child, status: int) -> str:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"was killed by signal {sig} ({signal.Signals(sig).name})"
            if sig == signal.SIGKILL and child.limits is not None and child.limits.memory_enforced != "none":
                how += (f" - SIGKILL is also how the kernel ends a process that exceeds its memory limit "
                        f"({child.limits.memory_mb:g} MB)")
            return how
        return f"exited with status {os.WEXITSTATUS(status)}"

    def cancel(self, run: str, pids: list[int]) -> None:
        """Kill this launcher's processes serving ``run`` (a failed run), then acknowledge."""
        self.runs.pop(run, None)
        for pid in pids:
            child = self.children.get(pid)
            if child is not None and child.serving is not None and child.serving[0] == run:
                child.serving = None
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
            pipe.delete(keys.launcher_alive(self.id))
            for key in self.client.scan_iter(match=f"pl:idle:{self.id}:*", count=1000):
                pipe.delete(key)
            for key in self.client.scan_iter(match=f"pl:proc:{self.id}:*", count=1000):
                pipe.delete(key)
            pipe.delete(keys.launcher_control(self.id))
            pipe.execute()
        with contextlib.suppress(Exception):
            self.client.close()


def run_launcher(url: str, secret: bytes, pool: str = "default", launcher_id: str | None = None,
                 parent_death: bool = False, serve_pool: bool = False) -> None:
    """Entry point of a launcher process (the executor's local one, or ``planlab agent``)."""
    if parent_death:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    launcher = Launcher(url, secret, pool=pool, launcher_id=launcher_id, serve_pool=serve_pool)
    with contextlib.suppress(Exception):
        cleanup_stale_cgroups(launcher.limiter.support)
    try:
        launcher.run()
    except redis.ConnectionError:
        pass  # the server is gone: shutdown() already ran
    finally:
        sys.stdout.flush()
