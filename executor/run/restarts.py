"""Recovery from dead workers: each one starts again as the next generation of its logical worker.

A worker reported dead (by its launcher, or by its lease) is started again as
the next *generation* of its logical worker, which recovers what the dead one
committed (:mod:`executor.recovery`); the run fails only when one task has
killed its worker more than ``max_task_kills`` times, naming the task and the
cause, or when no launcher is left to start it again.

A lease that lapses while the local launcher that holds it still runs (alive, not
stopped) is a slow host, not a lost one: a loaded machine can starve the
launcher's renewals past a short lease.  That launcher is authoritative about its
own children - it reports a worker's death when it reaps it and kills a frozen
one after its heartbeat timeout - so the run waits for it, at most a heartbeat
timeout and a lease, and then starts the worker again without counting a kill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn

from executor.messages import encode_start
from executor.recovery import done_numbers
from executor.run.context import RunContext
from executor.run.failures import death_failure
from executor.run.submission import Submission
from executor.server.cluster import wire_for
from planning.protocol import Invocation

__all__ = ["WorkerRestarts"]


class WorkerRestarts:
    """The deaths of one run's workers and their restarts; ``abort(what, fix)`` stops the run."""

    def __init__(self, ctx: RunContext, sub: Submission, abort: Callable[[str, str], NoReturn]) -> None:
        self.ctx = ctx
        self.sub = sub
        self.abort = abort
        self.generation: dict[str, int] = {}
        self.kills: dict[str, int] = {}
        self.pending_starts: dict[str, tuple[int, float]] = {}   # re-run starts not claimed yet
        self.deaths_after_results: list[str] = []
        self.reissued: dict[str, int] = {}   # worker -> starts issued again because one was lost (not a death)
        self.lapsed: dict[str, float] = {}   # worker -> when its lease was first seen lapsed, its launcher running
        self.deaths: list[str] = []
        self.finishing = False   # every result is in: a death no longer costs anything

    # ------------------------------------------------------------------ watching (no event for a while)
    def check_pending_starts(self) -> None:
        """Forget the re-run starts that were claimed (the unclaimed ones are :mod:`.first_starts`' to watch)."""
        if not self.pending_starts:
            return
        ctx = self.ctx
        names = list(self.pending_starts)
        pipe = ctx.r.pipeline(transaction=False)
        for w in names:
            pipe.hexists(ctx.k.claims, f"{w}#{self.pending_starts[w][0]}")
        for w, claimed in zip(names, pipe.execute()):
            if claimed:
                del self.pending_starts[w]

    def reissue(self, worker: str, why: str) -> None:
        """Start ``worker`` again because its start was lost before any process claimed it (no kill counted: not
        its task's doing); a start lost more than ``max_task_kills`` times fails the run."""
        if self.finishing:
            return
        self.reissued[worker] = self.reissued.get(worker, 0) + 1
        if self.reissued[worker] > self.ctx.s.max_task_kills:
            self.abort(f"the start of logical worker {worker!r} was lost {self.reissued[worker]} times (last: {why})",
                       "check the launchers serving the run (their output, the host's memory) and the server")
        self.deaths.append(f"{worker}: {why}; started again")
        self._restart(worker)

    def check_leases(self) -> None:
        """Treat a running worker whose lease expired (its host or launcher is gone) as dead."""
        ctx = self.ctx
        running = ctx.r.hgetall(ctx.k.running)
        if not running:
            return
        names = list(running)
        pipe = ctx.r.pipeline(transaction=False)
        for w in names:
            pipe.exists(ctx.k.lease(w.decode()))
        for w, ok in zip(names, pipe.execute()):
            if ok:
                self.lapsed.pop(w.decode(), None)
            elif ctx.r.hget(ctx.k.running, w) == running[w]:
                self._lease_expired(w.decode(), running[w].decode())

    def _lease_expired(self, worker: str, holder: str) -> None:
        launcher, pid, host = (holder.split(":", 2) + ["?", "?"])[:3]
        how = (f"its lease of {self.ctx.s.lease_s:g} s expired (worker process {pid} on {host} stopped answering, "
               f"with its launcher {launcher})")
        if launcher == self.ctx.ex.launcher_id and self.ctx.ex.local_launcher_answering():
            self._wait_for_own_launcher(worker, how)
            return
        if not self._other_launchers(launcher):
            self._fail_death(worker, "", how)
        self.on_death(f"{worker}|{self.generation.get(worker, 0)}||{how}")

    def _wait_for_own_launcher(self, worker: str, how: str) -> None:
        """The local launcher still runs: give it a heartbeat timeout and a lease to renew the lease, report the
        worker's death or kill it frozen; after that, start the worker again (no kill counted: not the task's)."""
        s = self.ctx.s
        if self.finishing:      # every result is in: nothing to start again
            return
        first = self.lapsed.setdefault(worker, time.monotonic())
        if time.monotonic() - first < s.heartbeat_timeout_s + s.lease_s:
            return
        self.deaths.append(f"{worker}: {how}, while its launcher still ran; started again")
        self._restart(worker)

    def _other_launchers(self, lost: str) -> list[str]:
        """Launchers other than ``lost`` that are alive and would serve this run's next start."""
        ex, r = self.ctx.ex, self.ctx.r
        found = []
        if ex.launcher_id and ex.launcher_id != lost and ex.local_launcher_alive():
            found.append(ex.launcher_id)
        if ex.shared_secret:
            for key in r.scan_iter(match="pl:launcher:*", count=1000):
                name = key.decode()[len("pl:launcher:"):]
                if name != lost and r.get(key) == self.ctx.s.pool.encode():
                    found.append(name)
        return found

    # ------------------------------------------------------------------ deaths
    def on_death(self, rest: str) -> None:
        """A ``d|WORKER|GEN|TASK|HOW`` event: restart the worker, or fail the run if its task killed it too often."""
        worker, gen, task, how = (rest.split("|", 3) + ["", "", ""])[:4]
        if not gen.isdigit() or int(gen) != self.generation.get(worker, 0):
            return  # an older generation's death, already handled
        if self.finishing:  # every result is in: nothing to re-run
            self.deaths_after_results.append(f"{worker}: {how}")
            self.ctx.r.hdel(self.ctx.k.running, worker)
            return
        task = task or self._unfinished_task(worker)
        self.kills[task] = self.kills.get(task, 0) + 1
        self.deaths.append(f"{worker} (task {task}): {how}")
        if self.kills[task] > self.ctx.s.max_task_kills:
            self._fail_death(worker, task, how)
        self._restart(worker)

    def _unfinished_task(self, worker: str) -> str:
        """The first task of ``worker`` not done yet (what it was waiting for when it died)."""
        seq = self.ctx.sequence(worker)
        numbers = done_numbers(wire_for(self.ctx.r), self.ctx.k.done, seq) if seq else {}
        return next((t for t in seq if numbers.get(t) is None), seq[0] if seq else worker)

    def _restart(self, worker: str) -> None:
        """Start the next generation of ``worker``: it recovers what the dead one committed."""
        ctx, sub = self.ctx, self.sub
        gen = self.generation[worker] = self.generation.get(worker, 0) + 1
        self.lapsed.pop(worker, None)
        first = ctx.sequence(worker)[0]
        code = sub.subs.get(worker) if worker in sub.inline else None
        msg = encode_start(ctx.sealer, Invocation(worker, first, True), sub.spec, time.time(), code, gen=gen,
                           restart=True, warm=worker in ctx.protocol.warm_starts())   # (a warmed one waits for it)
        pipe = ctx.r.pipeline(transaction=True)
        pipe.hdel(ctx.k.running, worker)   # a process still holding it (a lost host) is fenced off
        pipe.rpush(ctx.k.launch, msg)
        pipe.pexpire(ctx.k.launch, ctx.ttl_ms)
        pipe.execute()
        self.pending_starts[worker] = (gen, time.monotonic())

    def _fail_death(self, worker: str, task: str, how: str) -> None:
        self.abort(*death_failure(worker, self.ctx.sequence(worker), task, self.kills.get(task, 0),
                                  self.ctx.s.max_task_kills, how))
