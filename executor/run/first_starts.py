"""The watchdog of starts nobody claimed: one a live launcher works on is waited for, one lost is issued again.

A start message goes from the run's launch queue to a launcher, which acknowledges
it (``taken``: ``worker#generation`` -> launcher, :meth:`executor.launcher.queues.Launcher._acknowledge`)
and forks or hands it to a process, which claims it (``claims``).  A completion may
also hand a start straight to an idle process (no ack; that process claims it in
milliseconds).  Leases cover a worker once it claimed; before that, a start can be
lost without a death event: its launcher died after the pop (its processes die with
it), the message went with a server restart.  So, every watchdog tick (no event for
half a lease), for each start the run is owed and not claimed:

* acknowledged by a launcher that still lives (the local one answering, an agent's
  liveness key set): waited for - that launcher is authoritative about its processes
  (it reports a death and kills a frozen one); a cold start behind a fan-out on a
  loaded host takes seconds - but not for ever: one still unclaimed ``start_timeout_s``
  after its ack was lost by the launcher that lives on (seen twice in the executor
  benchmark's 10 MiB hand-offs: the run's keys held only the ack, every process left
  sat idle, the launcher waited on its queues, and the run hung - a late notice of a
  completion's hand-off had overridden the launcher's record of the start, so the death
  of its process before the claim went unreported; fixed in :mod:`executor.launcher.pool`,
  this stays the last line of defence), so it is *superseded* (its claim field taken, in one transaction with the next
  generation's start: a late claim of it is refused as a duplicate, so two processes
  never serve one worker) and started again (no kill counted);
* acknowledged by a launcher that is gone: started again at once (next generation, no
  kill counted: not the task's fault);
* not acknowledged (still queued, or popped and lost) for ``start_timeout_s``: when it
  still waits in the launch queue, the run fails with one line if no launcher took
  any start meanwhile (none alive, or none serving this pool); a backlog the launchers
  work through is waited for.  When it is not queued either (for :data:`MISSING_S`
  more: a launcher between its pop and its ack), it was lost: started again.

Which starts a run is owed: a static plan's logical worker once every parent of its
first task is done (its start was issued with the completion that made it ready,
or at submission); the re-run starts of :class:`executor.run.restarts.WorkerRestarts`
(a dynamic plan's workers are covered by their acks only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn

from executor import keys
from executor.launcher.queues import LAUNCHER_TTL_S
from executor.messages import decode_start
from executor.run.context import RunContext
from executor.run.restarts import WorkerRestarts

__all__ = ["FirstStarts", "MISSING_S", "SUPERSEDED"]

#: The holder written into a stale start's claim field (:meth:`FirstStarts._supersede`): no process's holder.
SUPERSEDED = "superseded"

#: How long an overdue start must be in no launch queue, no ack and no claim to count as lost: a launcher between its
#: pop and its ack holds it unseen - for as long as its liveness key would outlive it.
MISSING_S = LAUNCHER_TTL_S


class FirstStarts:
    """Watches the starts of one run until claimed (a lost one is issued again by ``restarts``; ``abort`` fails)."""

    def __init__(self, ctx: RunContext, restarts: WorkerRestarts, abort: Callable[[str, str], NoReturn]) -> None:
        self.ctx = ctx
        self.restarts = restarts
        self.generation = restarts.generation    # the run's current generation of each worker
        self.restart = restarts.reissue
        self.abort = abort
        self.unacked_since: dict[str, float] = {}   # "worker#gen" -> when first seen owed, unclaimed and unacked
        self.missing_since: dict[str, float] = {}   # ... and when first seen overdue and not queued either
        self.acked_since: dict[str, float] = {}      # "worker#gen" -> when first seen acknowledged by a live launcher
        self._taken_seen = (0, time.monotonic())    # (acks in the run, when that count last changed)

    def check(self) -> None:
        if self.restarts.finishing:   # every result is in: no start is owed any more
            return
        ctx, k = self.ctx, self.ctx.k
        pipe = ctx.r.pipeline(transaction=False)
        pipe.hgetall(k.taken)
        pipe.hkeys(k.claims)
        taken_raw, claimed_raw = pipe.execute()
        taken = {f.decode(): v.decode() for f, v in taken_raw.items()}
        claimed = {c.decode() for c in claimed_raw}
        now = time.monotonic()
        if len(taken) != self._taken_seen[0]:
            self._taken_seen = (len(taken), now)
        owed = [f"{w}#{self.generation.get(w, 0)}" for w in self._owed_workers(claimed)]
        owed += [f"{w}#{gen}" for w, (gen, _) in self.restarts.pending_starts.items()]
        owed += [f"{w}#{g}" for f, _ in taken.items() for w, g in [f.rsplit("#", 1)]
                 if int(g) == self.generation.get(w, 0) and f not in claimed]
        owed = [s for s in dict.fromkeys(owed) if s not in claimed]
        for start in list(self.unacked_since):
            if start not in owed or start in taken:
                del self.unacked_since[start]
                self.missing_since.pop(start, None)
        for start in list(self.acked_since):
            if start not in owed:
                del self.acked_since[start]
        overdue = []
        for start in owed:
            worker = start.rsplit("#", 1)[0]
            if start in taken:
                if not self._launcher_alive(taken[start]):
                    self.restart(worker, f"its start was taken by launcher {taken[start]}, which stopped before the "
                                         "worker claimed it")
                elif now - self.acked_since.setdefault(start, now) > ctx.s.start_timeout_s:
                    del self.acked_since[start]
                    self._supersede(start, taken[start])
            elif now - self.unacked_since.setdefault(start, now) > ctx.s.start_timeout_s:
                overdue.append(start)
        if overdue:
            self._overdue(overdue, now)

    def _supersede(self, start: str, launcher: str) -> None:
        """Start ``worker`` again past a start its live launcher took and no process claimed for ``start_timeout_s``.

        The stale start's claim field is taken first (``HSETNX``): should its process claim it after all, the
        claim script refuses it as a duplicate, and only the next generation serves the worker.  When the field
        is already set the start was claimed just now, and nothing is done."""
        ctx = self.ctx
        worker = start.rsplit("#", 1)[0]
        if not ctx.r.hsetnx(ctx.k.claims, start, SUPERSEDED):
            return
        ctx.r.pexpire(ctx.k.claims, ctx.ttl_ms)
        self.restart(worker, f"its start was taken by launcher {launcher}, which did not start it within "
                             f"start_timeout_s={ctx.s.start_timeout_s:g} s")

    def _owed_workers(self, claimed: set[str]) -> list[str]:
        """A static plan's workers whose first start was issued (every parent of the first task done), unclaimed."""
        ctx = self.ctx
        if ctx.protocol.dynamic:
            return []
        waiting = {w: seq[0] for w, seq in ctx.protocol.sequence.items()
                   if seq and f"{w}#{self.generation.get(w, 0)}" not in claimed}
        parents = sorted({p for t in waiting.values() for p in ctx.protocol.parents(t)})
        done = set()
        if parents:
            done = {p for p, n in zip(parents, ctx.r.hmget(ctx.k.done, parents)) if n is not None}
        return [w for w, t in waiting.items() if all(p in done for p in ctx.protocol.parents(t))]

    def _overdue(self, overdue: list[str], now: float) -> None:
        """Starts owed, unclaimed and unacknowledged for ``start_timeout_s``: still queued, or lost.

        The queue is read before the acks and claims again: a start a launcher pops meanwhile is then
        seen acknowledged.  A launcher's pop and its ack are two commands, so a start between them is in
        neither; one is lost only when it stays so for :data:`MISSING_S` (as long as an agent's liveness
        key outlives it).
        """
        ctx, s = self.ctx, self.ctx.s
        queued = self._queued()
        pipe = ctx.r.pipeline(transaction=False)
        pipe.hkeys(ctx.k.taken)
        pipe.hkeys(ctx.k.claims)
        taken, claimed = ({f.decode() for f in fields} for fields in pipe.execute())
        for start in overdue:
            worker = start.rsplit("#", 1)[0]
            if start in taken or start in claimed:
                self.unacked_since.pop(start, None)
                self.missing_since.pop(start, None)
            elif start not in queued:
                if now - self.missing_since.setdefault(start, now) < MISSING_S:
                    continue
                del self.unacked_since[start], self.missing_since[start]
                self.restart(worker, f"its start was lost (not in the launch queue, taken by no launcher, not "
                                     f"claimed within start_timeout_s={s.start_timeout_s:g} s)")
            elif now - self._taken_seen[1] > s.start_timeout_s:
                self.abort(f"no launcher took the start of logical worker {worker!r} of run {self.ctx.run_id} within "
                           f"start_timeout_s={s.start_timeout_s:g} s (it waits in the run's launch queue; "
                           f"{self._launchers_text()})",
                           f"start a launcher for pool {s.pool!r} ('planlab agent'), or use an Executor with its "
                           "local launcher")

    def _queued(self) -> set[str]:
        """``worker#gen`` of the starts waiting in the run's launch queue (read only when one is overdue)."""
        found = set()
        for blob in self.ctx.r.lrange(self.ctx.k.launch, 0, -1):
            try:
                msg = decode_start(self.ctx.sealer, blob)
            except Exception:   # noqa: BLE001 - a launcher refuses (and reports) a forged one
                continue
            found.add(f"{msg['worker']}#{int(msg.get('gen', 0))}")
        return found

    def _launcher_alive(self, launcher: str) -> bool:
        """Its liveness key is set (any launcher renews it every loop), or it is this executor's own forked launcher
        and still runs (a loaded host may starve its renewals; a Ray launcher thread has only its key)."""
        ex = self.ctx.ex
        if launcher == ex.launcher_id and ex.local_launcher_answering():
            return True
        return bool(self.ctx.r.exists(keys.launcher_alive(launcher)))

    def _launchers_text(self) -> str:
        ex = self.ctx.ex
        alive = ex.local_launcher_answering() or any(
            self.ctx.r.get(key) == self.ctx.s.pool.encode()
            for key in self.ctx.r.scan_iter(match=keys.launcher_alive("*"), count=1000))
        return ("a launcher of its pool is alive but took no start meanwhile" if alive
                else f"no launcher of pool {self.ctx.s.pool!r} is alive")
