"""A launcher's worker processes: warm hand-offs, cold forks, deaths, timeouts and leases.

A start goes to an idle process of the same profile (and limits) if one waits
on the idle list - popped and handed the start in one script call
(:data:`HANDOFF_LUA`), asked only while a child of that profile lives - else to a
new process forked for it (:mod:`.warm_process`).  A completion may have handed a
start to an idle process itself (:data:`executor.scripts.COMMIT_LUA`, one wake-up
instead of two); the launcher then records what the process serves from the
hand-off's notice (:meth:`ProcessPool.handed`).  The same script drains the notices
waiting, so they are recorded before the start it hands: a notice read later
(the launcher reads them every :data:`executor.launcher.queues.HANDED_EVERY_S`) was
overwriting the record of a newer start the launcher had handed the same process, once
it was idle again (94 of 208 notices in the 10 MiB hand-off benchmark).  The process
then served a start its launcher did not know of: no lease renewal, and a death
before its claim judged against the finished run - not reported, so the start was lost
(the benchmark's hang: only the launcher's ack of the start left, every process idle).
The launcher is the parent of its workers, so it learns of a death at once
(``waitpid``).  Whether a dead process was serving a logical worker is decided
from the run's claims: a process that died before it claimed its start (killed
or out of memory during its start), or while it held its logical worker, is
reported to the run as a ``d|`` event naming the task it ran (from the shared
heartbeat slot, :mod:`executor.heartbeat`); one that finished its work and died
idle is not.  Every loop the pool also kills processes whose task ran past its
timeout or whose heartbeat stopped, and renews the leases of the live ones.

The process count is not capped here: a static plan's workers may all block
waiting for notifications, so fewer processes than logical workers could
deadlock (the client refuses plans above ``ExecutorSettings.max_processes``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

import redis

from executor import keys
from executor.heartbeat import Slot
from executor.launcher.cold_limits import attach_in_background, attached_by_parent
from executor.launcher.warm_process import PROCESS_KEY_SLACK_S, become_worker, limits_info
from executor.limits import AppliedLimits, ResourceLimiter
from executor.server.cluster import run_evals

__all__ = ["ProcessPool", "Serving"]

#: A warm hand-off: pop an idle process's pid and push the start to its inbox (KEYS: idle list, and - when the caller
#: records them - the launcher's notices of completions' hand-offs; ARGV: inbox key without the pid, the message, the
#: inbox's TTL in s, the inbox key after the pid).  Returns nil, or the pid and the notices taken (every hand-off made
#: before this one).
HANDOFF_LUA = """
local pid = redis.call('RPOP', KEYS[1])
if not pid then return false end
local inbox = ARGV[1] .. pid .. ARGV[4]
redis.call('RPUSH', inbox, ARGV[2])
redis.call('EXPIRE', inbox, tonumber(ARGV[3]))
local notices = {}
if KEYS[2] then
  notices = redis.call('LRANGE', KEYS[2], 0, -1)
  if #notices > 0 then redis.call('DEL', KEYS[2]) end
end
return {pid, notices}
"""

#: What a process serves: (run, logical worker, generation, start task).
Serving = tuple[str, str, int, str]


@dataclass
class _Child:
    pid: int
    pool_key: str
    limits: AppliedLimits | None
    slot: Slot
    serving: Serving | None = None
    lease_s: float = 3.0
    heartbeat_timeout_s: float = 10.0
    cause: str | None = None  # why the launcher killed it (a timeout, a stopped heartbeat)
    task: str | None = None   # the task it ran when it was killed


class ProcessPool:
    """The worker processes of launcher ``launcher_id`` (their parent), on this host."""

    def __init__(self, client: redis.Redis, url: str, launcher_id: str, secret: bytes, host: str,
                 limiter: ResourceLimiter | None = None) -> None:
        self.client = client
        self.url = url
        self.launcher_id = launcher_id
        self.host = host
        self._secret = secret
        self._limiter = limiter
        self.children: dict[int, _Child] = {}
        self._renewed = 0.0
        self._handoff_script: Any = None
        #: records the notices of starts completions handed to idle processes (``pid\nrun\nstart`` each;
        #: :meth:`executor.launcher.queues.Launcher.record_handed`, which authenticates them); set by the launcher.
        #: None: the hand-off leaves them to whoever reads them (never taken here to be dropped)
        self.record_handed: Callable[[list[bytes]], None] | None = None

    @property
    def limiter(self) -> ResourceLimiter:
        if self._limiter is None:
            self._limiter = ResourceLimiter()
        return self._limiter

    # ------------------------------------------------------------------ starts
    def start(self, msg: dict[str, Any], blob: bytes) -> None:
        """Hand a start invocation to a warm idle process of its profile, or fork a cold one."""
        pool_key = keys.process_pool_key(msg)
        idle = keys.idle_list(self.launcher_id, pool_key)
        serving = (msg["run"], msg["worker"], int(msg.get("gen", 0)), msg["task"])
        self.reap()
        # Only a live child of this launcher can wait on its idle list: with none of this profile,
        # fork at once (asking the idle list cost a round trip of every cold start).
        while any(c.pool_key == pool_key for c in self.children.values()):
            handed = self._handoff(idle, keys.inbox_item(msg["run"], keys.BY_LAUNCHER, blob))
            if handed is None:
                break
            pid, notices = handed
            # Completions' hand-offs made before this one (maybe to this very process, before it was idle again):
            # recorded first, so none is taken later for what the process serves now.
            if notices:
                self.record_handed(notices)
            self.reap()
            child = self.children.get(pid)
            if child is not None and child.pool_key == pool_key:
                self._assign(child, msg, serving, slot=False)
                return
            # Not a live child of this profile (it died since it offered itself): take the message back.
            self.client.delete(keys.process_inbox(self.launcher_id, pid))
        self._fork(msg, pool_key, idle, serving)

    def _handoff(self, idle: str, payload: bytes) -> tuple[int, list[bytes]] | None:
        """Pop an idle process and put the start on its inbox, in one round trip: the process's pid and the
        notices of completions' hand-offs taken with it (:data:`HANDOFF_LUA`), or None (no process idle)."""
        if self._handoff_script is None:
            self._handoff_script = self.client.register_script(HANDOFF_LUA)
        prefix, suffix = keys.process_inbox_parts(self.launcher_id)
        notices = [keys.launcher_handed(self.launcher_id)] if self.record_handed is not None else []
        got = self._handoff_script(keys=[idle, *notices], args=[prefix, payload, int(PROCESS_KEY_SLACK_S), suffix])
        return None if got is None else (int(got[0]), list(got[1]))

    def handed(self, pid: int, msg: dict[str, Any], blob: bytes) -> str:
        """Record a start a completion handed straight to idle process ``pid`` (:data:`executor.scripts.COMMIT_LUA`'s
        ``H`` op).  Returns what became of it: ``assigned``, ``restarted`` (the process was gone before it
        took the start: taken back from its inbox and started as usual), or ``lost`` (it took the start and
        died before its launcher learned of it: reported to the run like any death during work).
        """
        serving = (msg["run"], msg["worker"], int(msg.get("gen", 0)), msg["task"])
        self.reap()
        child = self.children.get(pid)
        if child is not None and child.pool_key == keys.process_pool_key(msg):
            self._assign(child, msg, serving, slot=False)
            return "assigned"
        if self.client.lrem(keys.process_inbox(self.launcher_id, pid), 1,
                            keys.inbox_item(msg["run"], keys.BY_COMPLETION, blob)):
            self.start(msg, blob)
            return "restarted"
        holder = f"{self.launcher_id}:{pid}:{self.host}"
        costly, claim = death_cost_work(self.client, serving, holder)
        if costly:
            when = "during its start" if claim is None else "while it ran"
            report_death(self.client, msg["run"], f"{msg['worker']}|{serving[2]}|{msg['task']}|worker process {pid} "
                                                  f"on {self.host} died before its launcher learned of its start "
                                                  f"({when})")
        return "lost"

    @staticmethod
    def _assign(child: _Child, msg: dict[str, Any], serving: Serving, slot: bool = True) -> None:
        """Record what ``child`` serves.  A process about to be forked also gets its start task in its slot;
        a warm one writes its slot itself (it may already run when the launcher gets here)."""
        child.serving = serving
        child.lease_s = float(msg.get("lease_s", 3.0))
        child.heartbeat_timeout_s = float(msg.get("heartbeat_timeout_s", 10.0))
        if slot:
            child.slot.task(msg["task"], 0.0)   # until it claims: a death now is a death during its start
            child.slot.beat()

    def _fork(self, msg: dict[str, Any], pool_key: str, idle: str, serving: Serving) -> None:
        cpus, memory_mb = msg.get("cpus"), msg.get("memory_mb")
        applied = None
        if msg.get("limits") and (cpus or memory_mb):
            applied = self.limiter.create(cpus, memory_mb, f"{msg['profile']}")
        info = limits_info(applied)
        slot = Slot()
        child = _Child(0, pool_key, applied, slot)
        self._assign(child, msg, serving)
        joined = os.pipe() if attached_by_parent(applied) else None
        pid = os.fork()
        if pid == 0:  # the worker process
            if joined is not None:
                os.close(joined[1])
            become_worker(self.url, self.launcher_id, self._secret, msg, applied, info, idle, slot,
                          joined[0] if joined is not None else None)
        if joined is not None:   # attached while the child starts (its first task waits for it)
            os.close(joined[0])
            attach_in_background(applied, pid, joined[1])
        child.pid = pid
        self.children[pid] = child

    # ------------------------------------------------------------------ watching the live ones
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

        Run every loop (at least every 0.2 s), renewing at a third of the shortest lease.  A lease that
        lapsed because this launcher was starved of CPU (a loaded host) is set again while the child still
        holds its worker (:data:`RENEW_LUA`), so the run sees it back instead of a lost worker.
        """
        serving = [c for c in self.children.values() if c.serving is not None and c.cause is None
                   and c.slot.read()[0] <= c.heartbeat_timeout_s]
        if not serving:
            return
        now = time.monotonic()
        if now - self._renewed < min(c.lease_s for c in serving) / 3:
            return
        self._renewed = now
        evals = [(RENEW_LUA, 2, keys.RunKeys(c.serving[0]).running, keys.RunKeys(c.serving[0]).lease(c.serving[1]),
                  c.serving[1], f"{self.launcher_id}:{c.pid}:{self.host}", int(c.lease_s * 1000)) for c in serving]
        run_evals(self.client, evals)

    # ------------------------------------------------------------------ deaths
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
            if child.serving is not None:   # even on status 0: a worker that left its work unfinished
                self._report_death(child, status)
            child.slot.close()

    def _report_death(self, child: _Child, status: int) -> None:
        """Report a death that cost work: before its claim, or while it held its logical worker.

    Whatever the exit status: a worker process that exits 0 normally has finished its
    logical worker (released its claim; :func:`death_cost_work` says so), but one that
    left its start unclaimed or its work unfinished and exited 0 (a ``redis.ConnectionError``
    ends a warm process quietly, :mod:`executor.launcher.warm_process`) would otherwise lose
    that start without a word: its run waited for it for good (a benchmark hung, issue 18's
    stop)."""
        run, worker, gen, start_task = child.serving
        costly, claim = death_cost_work(self.client, child.serving, f"{self.launcher_id}:{child.pid}:{self.host}")
        if not costly:
            return
        _, _, task = child.slot.read()
        task = child.task or task or (start_task if claim is None else "")
        how = child.cause or _describe_status(child, status, child.slot.last_note())
        when = "during its start" if claim is None else "while it ran"
        report_death(self.client, run, f"{worker}|{gen}|{task}|worker process {child.pid} on {self.host} {how} ({when})")

    # ------------------------------------------------------------------ kills
    def kill_serving(self, run: str, pids: list[int]) -> None:
        """Kill the processes among ``pids`` that serve ``run`` (a failed run) and reap them (2 s at most)."""
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

    def kill_all(self) -> None:
        """Kill every worker process and release every cgroup (5 s at most for the processes to exit)."""
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


#: KEYS: running hash, lease; ARGV: worker, holder, lease ms.  The lease again, only for its current holder: a
#: worker that finished (its running entry gone) or was fenced off by a restart is not brought back.
RENEW_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def _describe_status(child: _Child, status: int, note: str | None = None) -> str:
    """How a process ended, from its wait status (a SIGKILL under a memory limit says so) and what it noted
    before it ended on its own (:meth:`executor.heartbeat.Slot.note`: the error that lost its connection)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        how = f"was killed by signal {sig} ({signal.Signals(sig).name})"
        if sig == signal.SIGKILL and child.limits is not None and child.limits.memory_enforced != "none":
            how += (f" - SIGKILL is also how the kernel ends a process that exceeds its memory limit "
                    f"({child.limits.memory_mb:g} MB)")
        return how
    code = os.WEXITSTATUS(status)
    if code == 0:
        return f"exited (status 0) before finishing its logical worker: {note or 'e.g. its connection to the server failed'}"
    return f"exited with status {code}" + (f": {note}" if note else "")


def death_cost_work(client: redis.Redis, serving: Serving, holder: str) -> tuple[bool, bytes | None]:
    """Whether a dead process's logical worker lost work (its run is live and it held, or was starting, that
    generation), and its claim (None: it died before claiming).  Shared by the fork pool and the Ray pool."""
    run, worker, gen, _ = serving
    k = keys.RunKeys(run)
    pipe = client.pipeline(transaction=False)
    pipe.exists(k.live)
    pipe.hget(k.claims, f"{worker}#{gen}")
    pipe.hget(k.running, worker)
    live, claim, running = pipe.execute()
    if not live:
        return False, claim
    # another process serves that generation, or this one finished it and died idle
    if claim is not None and (claim.decode() != holder or (running or b"").decode() != holder):
        return False, claim
    return True, claim


def report_death(client: redis.Redis, run: str, event: str) -> None:
    """Tell the run's client a worker died (``event``: ``worker|gen|task|what happened``)."""
    k = keys.RunKeys(run)
    pipe = client.pipeline(transaction=False)
    pipe.rpush(k.events, f"d|{event}")
    pipe.expire(k.events, 86400)
    pipe.execute()
