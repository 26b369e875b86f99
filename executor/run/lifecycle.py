"""One run from submission to cleanup: waiting on its events, and what stops it.

``Executor.run`` makes one :class:`Run`.  After the submission
(:mod:`.submission`) the client blocks on the run's event list: a sink done
(its value is fetched at once, :mod:`.collection`), a task failed for good
(:mod:`.failures`), a worker dead (:mod:`.restarts`), a start refused by a
launcher.  When no event comes for half a lease, a watchdog checks the local
launcher, the run's timeout, starts nobody claimed (:mod:`.first_starts`), and expired leases.
Once every sink is in, the run waits a little for the last metrics uploads,
builds the trace and deletes its keys (:mod:`.teardown`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import redis

from executor.run import collection, submission, teardown
from executor.run.context import RunContext
from executor.run.failures import read_task_error, task_failure
from executor.run.first_starts import FirstStarts
from executor.run.restarts import WorkerRestarts
from executor.run.warm_starts import start_warm_workers
from executor.server import redacted_url
from planning.errors import ExecutionError
from planning.protocol import WorkerProtocol
from planning.trace import Trace
from planning.workflow import Workflow

if TYPE_CHECKING:
    from executor.auth import RunSealer
    from executor.client import Executor
    from executor.settings import ExecutorSettings
    from planning.plan import Plan

__all__ = ["Run"]


class Run:
    """Submission, waiting, recovery and cleanup of one run (``Executor.run`` makes one)."""

    def __init__(self, ex: Executor, workflow: Workflow, plan: Plan, run_id: str, protocol: WorkerProtocol,
                 sealer: RunSealer, settings: ExecutorSettings | None = None) -> None:
        self.ctx = RunContext.of(ex, workflow, plan, run_id, protocol, sealer, settings)
        self.restarts: WorkerRestarts | None = None
        self.first_starts: FirstStarts | None = None
        self.aborted = False
        self._t0 = 0.0

    def execute(self) -> tuple[dict[str, Any], Trace, dict[str, Any]]:
        """Submit, wait, clean up: (sink results, trace, meta).  Failures raise :class:`ExecutionError`.

        A run id already live on the server is refused before anything else: the clean-up
        below would otherwise cancel and delete the *other* run that holds that id.
        """
        try:
            submission.check_run_id_free(self.ctx)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._lost_server(exc) from None
        try:
            return self._execute()
        except ExecutionError as exc:
            if not self.aborted:   # e.g. a payload that failed authentication
                self._stop_quietly()
            raise exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._lost_server(exc) from None
        except BaseException:  # e.g. Ctrl-C: stop the workers first, or late writes would leave keys behind
            self._stop_quietly()
            raise

    def _stop_quietly(self) -> None:
        with contextlib.suppress(Exception):
            teardown.cancel(self.ctx)
        with contextlib.suppress(Exception):
            teardown.cleanup(self.ctx, keep_metrics=True)

    def _lost_server(self, exc: Exception) -> ExecutionError:
        ex = self.ctx.ex
        server = getattr(ex._endpoint, "server", None)
        if server is not None and server.died_within(1.0):
            where = "the embedded Redis-protocol server died"
        else:
            where = f"the connection to the Redis server at {redacted_url(ex.url)} was lost"
        return ExecutionError(f"{where} during run {self.ctx.run_id} ({type(exc).__name__}: {exc}); the run is lost",
                              "check the server (memory, a restart, the network) and run again")

    def _execute(self) -> tuple[dict[str, Any], Trace, dict[str, Any]]:
        sub = submission.prepare(self.ctx)
        self.restarts = WorkerRestarts(self.ctx, sub, self._abort)
        self.first_starts = FirstStarts(self.ctx, self.restarts, self._abort)
        t0 = self._t0 = time.time()  # submission: everything before is preparation (meta prepare_s)
        submission.submit(self.ctx, sub, t0)
        start_warm_workers(self.ctx, sub.spec, t0)     # the plan's pre-warmed workers, each at its time
        return self._wait(t0, sub.prepare_s)

    # ------------------------------------------------------------------ wait
    def _wait(self, t0: float, prepare_s: float) -> tuple[dict[str, Any], Trace, dict[str, Any]]:
        ctx = self.ctx
        coded = {t.id for t in ctx.workflow.tasks if t.func is not None}
        sinks = set(ctx.workflow.sinks())
        results: dict[str, Any] = {}
        seen: dict[str, float] = {}
        while sinks:
            for kind, rest in self._events():
                if kind == "s" and rest in sinks:
                    seen[rest] = time.time()
                    results[rest] = collection.fetch_sink(ctx, rest, coded)
                    sinks.discard(rest)
                else:
                    self._on_event(kind, rest)
        makespan = time.time() - t0
        self._await_last_metrics()
        trace, meta = collection.collect(ctx, self.restarts, t0, makespan, prepare_s, seen)
        teardown.cleanup(ctx, keep_metrics=True)
        return results, trace, meta

    def _await_last_metrics(self) -> None:
        """Every result is in; give the workers still running a few leases to upload their metrics."""
        self.restarts.finishing = True
        deadline = time.monotonic() + max(5.0, 3 * self.ctx.s.lease_s)
        while self.ctx.r.hlen(self.ctx.k.running) and time.monotonic() < deadline:
            for kind, rest in self._events(self.ctx.k.finished):
                self._on_event(kind, rest)

    def _on_event(self, kind: str, rest: str) -> None:
        if kind == "e":
            self._abort(*task_failure(read_task_error(self.ctx)))
        elif kind == "d":
            self.restarts.on_death(rest)
        elif kind == "a":
            self._abort(f"launcher {rest} refused this run's start message: it failed authentication",
                        "give every agent the client's deployment secret ($PLANLAB_SECRET or $PLANLAB_SECRET_FILE)")

    def _events(self, *also: str) -> Iterator[tuple[str, str]]:
        """Block until at least one event arrives (or the watchdog's timeout); yield all queued ones.

        ``also``: more lists to wait on (the finished workers, once every result is in).
        """
        r, k = self.ctx.r, self.ctx.k
        timeout = max(0.05, min(1.0, self.ctx.s.lease_s / 2))
        pipe = r.pipeline(transaction=False)
        pipe.blpop([k.events, *also], timeout=timeout)
        for key in (k.events, *also):
            pipe.lpop(key, 10_000)  # runs as soon as the BLPOP is served: one round trip
        got, *more = pipe.execute()
        if got is None:
            self._watchdog()
            return
        for item in [got[1]] + [m for ms in more for m in (ms or [])]:
            kind, _, rest = item.decode(errors="replace").partition("|")
            yield kind, rest

    def _watchdog(self) -> None:
        ctx = self.ctx
        if ctx.ex.local_launcher_alive() is False:
            self._abort("the executor's local launcher process died", "see its output above; re-open the Executor")
        if ctx.s.run_timeout_s and time.time() - self._t0 > ctx.s.run_timeout_s:
            self._abort(f"run {ctx.run_id} did not finish within run_timeout_s={ctx.s.run_timeout_s:g} s",
                        "raise ExecutorSettings.run_timeout_s, or check the plan with 'planlab plan'")
        self.restarts.check_pending_starts()
        self.first_starts.check()
        self.restarts.check_leases()

    # ------------------------------------------------------------------ failures
    def _abort(self, what: str, fix: str) -> NoReturn:
        self.aborted = True
        teardown.cancel(self.ctx)
        teardown.cleanup(self.ctx, keep_metrics=True)
        raise ExecutionError(what, fix)
