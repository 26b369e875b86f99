"""The client: submit a workflow with its plan, wait for the sinks, return results and the Trace.

Submitting costs one pipelined round trip: the run's liveness key, the worker
protocol over the code-less workflow (stored once, fetched once per worker
process), the counters of tasks with several parents, large constants (once, by
content hash), the sub-DAGs too large to travel inline, and the initial
invocations (:meth:`WorkerProtocol.initial_invocations`) - start invocations to
the launch queue with their sub-DAG inline when small, notifications to inboxes.

Waiting is a blocking pop on the run's event list, never a polling loop: sinks
done, logical workers done, a task's final error, a worker's death all arrive
there.  The pop's timeout (at most a second) only wakes the watchdog that checks
the leases of running workers, the local launcher and the run timeout, so a
killed worker fails the run within about ``lease_s``.

After the run every key but the metrics list is removed (``keep_keys`` keeps
them); a failed run first has its processes killed by their launchers.
"""

from __future__ import annotations

import contextlib
import copy
import math
import multiprocessing
import os
import pickle
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

import redis

from executor import codec, keys
from executor.launcher import new_launcher_id, run_launcher
from executor.limits import cleanup_stale_cgroups, probe_limits
from executor.server import RedisEndpoint, redacted_url
from executor.settings import ExecutorSettings
from executor.tracing import build_trace, limits_summary
from executor.worker import RunSpec, encode_start
from planning.errors import ExecutionError, PlanError
from planning.protocol import WorkerProtocol
from planning.trace import Trace
from planning.workflow import Workflow

__all__ = ["Executor", "ExecutionResult", "execute"]


def thread_share(plan: Any, host_cpus: int | None = None) -> float:
    """The fraction of its CPUs a worker can really get: host CPUs over the plan's peak of planned CPUs (<= 1).

    The peak is the largest sum of CPUs of workers whose planned lifetimes overlap.
    """
    host = float(host_cpus or os.cpu_count() or 1)
    cpus = {p.name: float(p.cpus) for p in plan.catalog}
    events = sorted([(float(w.start_s), 1, cpus[w.profile]) for w in plan.workers.itertuples()]
                    + [(float(w.stop_s), 0, cpus[w.profile]) for w in plan.workers.itertuples()])
    peak = current = 0.0
    for _, starting, c in events:          # stops sort before starts at the same instant
        current += c if starting else -c
        peak = max(peak, current)
    return min(1.0, host / peak) if peak > 0 else 1.0


@dataclass
class ExecutionResult:
    """Sink results (``sink id -> value``), the real Trace, and what the run really was."""

    results: dict[str, Any]
    trace: Trace
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def makespan_s(self) -> float:
        return self.trace.makespan_s

    def history(self, workflow: Workflow):
        """This run's rows of the history schema (so the next plan learns from it)."""
        return self.trace.to_history(workflow.name, workflow.structure_hash())


class Executor:
    """A Redis endpoint and a local launcher kept across runs (warm processes survive between runs).

    ``redis_url=None`` starts an embedded server; otherwise the server at the URL
    is used (``redis://:PASSWORD@HOST:PORT/DB``).  ``local_launcher=False`` relies
    on ``planlab agent`` launchers serving ``settings.pool`` instead.
    """

    def __init__(self, redis_url: str | None = None, settings: ExecutorSettings | None = None, *,
                 local_launcher: bool = True) -> None:
        self.settings = settings or ExecutorSettings()
        self._requested_url = redis_url
        self._local_launcher = local_launcher
        self._endpoint: RedisEndpoint | None = None
        self._client: redis.Redis | None = None
        self._launcher: multiprocessing.process.BaseProcess | None = None
        self.launcher_id: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> "Executor":
        if self._endpoint is not None:
            return self
        endpoint = RedisEndpoint(self._requested_url).open()
        try:
            self._client = endpoint.client(socket_timeout=30.0)  # blocking pops ask for <= 1 s
            self._client.ping()
            if self._local_launcher:
                self.launcher_id = new_launcher_id()
                ctx = multiprocessing.get_context("fork")
                main = threading.current_thread() is threading.main_thread()
                self._launcher = ctx.Process(target=run_launcher, name="planlab-launcher",
                                             args=(endpoint.url, self.settings.pool, self.launcher_id, main))
                self._launcher.start()
        except BaseException:
            endpoint.close()
            raise
        self._endpoint = endpoint
        return self

    def close(self) -> None:
        """Stop the local launcher (its processes and cgroups go with it) and an embedded server."""
        if self._endpoint is None:
            return
        try:
            if self._launcher is not None:
                try:
                    self._client.rpush(keys.launcher_control(self.launcher_id), pickle.dumps({"type": "stop"}))
                except redis.RedisError:
                    pass
                self._launcher.join(timeout=10)
                if self._launcher.is_alive():
                    self._launcher.kill()
                    self._launcher.join(timeout=5)
                    with contextlib.suppress(OSError):
                        cleanup_stale_cgroups()  # the killed launcher's cgroups (its pid is in their names)
                self._launcher = None
        finally:
            if self._client is not None:
                self._client.close()
            self._endpoint.close()
            self._endpoint = None

    def __enter__(self) -> "Executor":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The server URL workers use (contains the password: do not log it)."""
        if self._endpoint is None:
            raise ExecutionError("the executor is not open", "use it as a context manager or call open()")
        return self._endpoint.url

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise ExecutionError("the executor is not open", "use it as a context manager or call open()")
        return self._client

    # ------------------------------------------------------------------ one run
    def run(self, workflow: Workflow, plan, run_id: str | None = None,
            protocol: WorkerProtocol | None = None) -> ExecutionResult:
        """Execute ``plan`` of ``workflow`` for real; see :func:`execute`."""
        self.open()
        with self._lock:
            return _Run(self, workflow, plan, run_id, protocol).execute()


def execute(workflow: Workflow, plan, *, redis_url: str | None = None, settings: ExecutorSettings | None = None,
            run_id: str | None = None) -> ExecutionResult:
    """Run ``plan`` of ``workflow`` once on real, limited worker processes.

    Starts (and stops) an embedded server unless ``redis_url`` is given; use an
    :class:`Executor` to keep the server and warm processes across many runs.
    """
    with Executor(redis_url, settings) as ex:
        return ex.run(workflow, plan, run_id=run_id)


class _Run:
    """Submission, waiting and cleanup of one run."""

    def __init__(self, ex: Executor, workflow: Workflow, plan, run_id: str | None,
                 protocol: WorkerProtocol | None) -> None:
        self.ex = ex
        self.s = ex.settings
        self.r = ex.client
        self.workflow = workflow
        self.plan = plan
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.k = keys.RunKeys(self.run_id)
        _check_plan(workflow, plan, self.s)
        self.protocol = protocol or WorkerProtocol.for_plan(workflow, plan)

    # ------------------------------------------------------------------ submit
    def _prepare(self) -> tuple[RunSpec, dict[str, bytes], dict[str, bytes]]:
        wf = self.workflow
        proto = copy.copy(self.protocol)
        proto.workflow = codec.skeleton(wf)
        coded = frozenset(t.id for t in wf.tasks if t.func is not None)
        constants: dict[str, bytes] = {}
        codes = {t.id: codec.split_constants(t, self.s.constant_threshold_bytes, constants)
                 for t in wf.tasks if t.func is not None}
        share = thread_share(self.plan) if self.s.threads == "fair" else 1.0
        profiles = {p.name: (float(p.cpus), float(p.memory_mb), max(1, math.floor(float(p.cpus) * share + 1e-9)))
                    for p in self.plan.catalog}
        spec = RunSpec(proto, self.s, coded, 0.0, profiles)
        if self.protocol.dynamic:
            subs = {"*": codec.dumps_code(codes)}
        else:
            subs = {w: codec.dumps_code({t: codes[t] for t in seq if t in codes})
                    for w, seq in self.protocol.sequence.items()}
        return spec, constants, subs

    def execute(self) -> ExecutionResult:
        if self.r.exists(self.k.live, self.k.metrics):
            raise ExecutionError(f"run id {self.run_id!r} is already in use on this server",
                                 "pass another run_id, or none to get a fresh one")
        prep0 = time.perf_counter()
        spec, constants, subs = self._prepare()
        initial = self.protocol.initial_invocations()
        inline = {inv.worker for inv in initial if inv.start and not self.protocol.dynamic
                  and len(subs[inv.worker]) < self.s.inline_threshold_bytes}
        spec_blob = codec.dumps_code(spec)
        prepare_s = time.perf_counter() - prep0
        t0 = self._t0 = time.time()  # submission: everything before is preparation (meta prepare_s)
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.k.live, "1")
        pipe.set(self.k.protocol, spec_blob)
        for digest, data in constants.items():
            pipe.set(self.k.const(digest), data)
        multi = {t: n for t, n in spec.n_parents.items() if n > 1}
        if multi:
            pipe.hset(self.k.deps, mapping=multi)
        for w, blob in subs.items():
            if w not in inline:
                pipe.set(self.k.subdag(w), blob)
        starts = 0
        for inv in initial:
            if inv.start:
                starts += 1
                pipe.rpush(keys.launch_queue(self.s.pool),
                           encode_start(self.run_id, inv, spec, t0, subs[inv.worker] if inv.worker in inline else None))
            else:
                pipe.rpush(self.k.inbox(inv.worker), pickle.dumps((inv.task, t0, None, None), protocol=5))
        pipe.incrby(self.k.starts, starts)
        try:
            pipe.execute()
            return self._wait(t0, prepare_s)
        except ExecutionError:
            raise  # _abort already stopped the run's processes and removed its keys
        except BaseException:  # e.g. Ctrl-C: stop the workers first, or late writes would leave keys behind
            with contextlib.suppress(Exception):
                self._cancel()
            with contextlib.suppress(Exception):
                self._cleanup(keep_metrics=True)
            raise

    # ------------------------------------------------------------------ wait
    def _wait(self, t0: float, prepare_s: float) -> ExecutionResult:
        sinks = set(self.workflow.sinks())
        results: dict[str, Any] = {}
        done_workers: list[str] = []
        deaths: list[str] = []
        seen: dict[str, float] = {}
        while sinks:
            for kind, rest in self._events():
                if kind == "s":
                    seen[rest] = time.time()
                    results[rest] = self._fetch_sink(rest)
                    sinks.discard(rest)
                elif kind == "w":
                    done_workers.append(rest)
                elif kind == "e":
                    self._fail_task()
                elif kind == "d":
                    self._fail_death(rest)
        makespan = time.time() - t0
        started = int(self.r.get(self.k.starts) or 0)
        while len(done_workers) + len(deaths) < started:  # the last workers upload their metrics
            for kind, rest in self._events():
                if kind == "w":
                    done_workers.append(rest)
                elif kind == "d":
                    deaths.append(rest)
        raw = self.r.lrange(self.k.metrics, 0, -1)
        meta = {"run_id": self.run_id, "redis": "embedded" if self.ex._endpoint.embedded else redacted_url(self.ex.url),
                "settings": asdict(self.s), "prepare_s": prepare_s, "planner": getattr(self.plan, "planner", ""),
                "planned_makespan_s": float(getattr(self.plan, "makespan_s", float("nan"))),
                "dynamic": self.protocol.dynamic, "started_workers": started, "deaths_after_results": deaths}
        trace = build_trace(self.workflow, self.protocol, self.plan.catalog, raw, t0, makespan, meta, seen)
        meta["limits_enforced"] = {**limits_summary(trace.workers), "support": _support_text(self.s)}
        meta["cold_starts"] = trace.cold_starts
        meta["warm_starts"] = int((~trace.workers["cold_start"]).sum()) if len(trace.workers) else 0
        trace.meta.update(meta)
        self._cleanup(keep_metrics=True)
        return ExecutionResult(results, trace, meta)

    def _events(self):
        """Block until at least one event arrives (or the watchdog's timeout); yield all queued ones."""
        timeout = max(0.05, min(1.0, self.s.lease_s / 2))
        pipe = self.r.pipeline(transaction=False)
        pipe.blpop([self.k.events], timeout=timeout)
        pipe.lpop(self.k.events, 10_000)  # runs as soon as the BLPOP is served: one round trip
        got, more = pipe.execute()
        if got is None:
            self._watchdog()
            return
        items = [got[1]] + (more or [])
        for item in items:
            kind, _, rest = item.decode().partition("|")
            yield kind, rest

    def _fetch_sink(self, task_id: str) -> Any:
        data = self.r.get(self.k.out(task_id))
        if data is None:
            raise ExecutionError(f"sink {task_id!r} reported done but its result is not on the server",
                                 "report this as an executor bug")
        return codec.loads_value(data) if task_id in self._coded else data

    @property
    def _coded(self) -> set[str]:
        if not hasattr(self, "_coded_cache"):
            self._coded_cache = {t.id for t in self.workflow.tasks if t.func is not None}
        return self._coded_cache

    def _watchdog(self) -> None:
        launcher = self.ex._launcher
        if launcher is not None and not launcher.is_alive():
            self._abort("the executor's local launcher process died",
                        "see its output above; re-open the Executor")
        if self.s.run_timeout_s and time.time() - self._t0 > self.s.run_timeout_s:
            self._abort(f"run {self.run_id} did not finish within run_timeout_s={self.s.run_timeout_s:g} s",
                        "raise ExecutorSettings.run_timeout_s, or check the plan with 'planlab plan'")
        running = self.r.hgetall(self.k.running)
        if not running:
            return
        names = list(running)
        pipe = self.r.pipeline(transaction=False)
        for w in names:
            pipe.exists(self.k.lease(w.decode()))
        alive = pipe.execute()
        for w, ok in zip(names, alive):
            if not ok and self.r.hexists(self.k.running, w):
                holder = running[w].decode()
                self._fail_death(f"{w.decode()}|its lease of {self.s.lease_s:g} s expired (worker process "
                                 f"{holder.split(':')[1]} on {holder.split(':', 2)[2]} stopped answering)")

    # ------------------------------------------------------------------ failures
    def _fail_task(self) -> None:
        data = self.r.get(self.k.error)
        info = pickle.loads(data) if data else {"task": "?", "worker": "?", "traceback": "(no traceback stored)",
                                                "attempts": 0}
        if info.get("internal"):
            self._abort(f"worker {info['worker']!r} hit an executor error while starting task {info['task']!r}:\n"
                        f"{info['traceback'].rstrip()}", "report this as an executor bug, with the traceback")
        self._abort(f"task {info['task']!r} failed on worker {info['worker']!r} after {info['attempts']} "
                    f"attempt(s):\n{info['traceback'].rstrip()}",
                    "fix the task's code or inputs (the traceback above is from the worker)")

    def _fail_death(self, rest: str) -> None:
        worker, _, how = rest.partition("|")
        tasks = self.protocol.sequence.get(worker) if not self.protocol.dynamic else None
        what = f" (planned tasks: {', '.join(tasks[:5])}{'...' if len(tasks) > 5 else ''})" if tasks else ""
        self._abort(f"logical worker {worker!r}{what} died: {how}; the run was stopped",
                    "if it was killed for memory, give its tasks a profile with more memory; "
                    "otherwise run again (a killed worker's work is not re-run)")

    def _abort(self, what: str, fix: str) -> None:
        self._cancel()
        self._cleanup(keep_metrics=True)
        raise ExecutionError(what, fix)

    def _cancel(self) -> None:
        """Stop every process still serving this run: drop liveness, ask their launchers to kill them."""
        self.r.delete(self.k.live)
        running = self.r.hgetall(self.k.running)
        by_launcher: dict[str, list[int]] = {}
        for holder in running.values():
            lid, pid, _ = holder.decode().split(":", 2)
            by_launcher.setdefault(lid, []).append(int(pid))
        for lid, pids in by_launcher.items():
            self.r.rpush(keys.launcher_control(lid), pickle.dumps({"type": "cancel", "run": self.run_id, "pids": pids}))
        deadline = time.monotonic() + 3.0
        acked = 0
        while acked < len(by_launcher) and time.monotonic() < deadline:
            if self.r.blpop([self.k.acks], timeout=max(0.05, deadline - time.monotonic())) is not None:
                acked += 1

    def _cleanup(self, keep_metrics: bool) -> None:
        if self.s.keep_keys:
            return
        victims = [key for key in self.r.scan_iter(match=f"{self.k.prefix}*", count=1000)
                   if key.decode() != self.k.metrics]
        for i in range(0, len(victims), 1000):
            self.r.unlink(*victims[i:i + 1000])
        if keep_metrics and self.s.metrics_ttl_s:
            self.r.expire(self.k.metrics, int(self.s.metrics_ttl_s))


def _check_plan(workflow: Workflow, plan, settings: ExecutorSettings) -> None:
    """Refuse a plan that does not belong to the workflow, or needs too many processes."""
    if getattr(plan, "structure_hash", workflow.structure_hash()) != workflow.structure_hash():
        raise PlanError(f"the plan was made for workflow {plan.workflow_name!r} of another shape",
                        "plan this workflow first (planlab plan / get_planner(...).plan)")
    plan.validate(workflow)
    n = len(plan.workers)
    if not plan.dynamic and n > settings.max_processes:
        raise ExecutionError(f"the plan has {n} logical workers; a static plan may need them all at once "
                             f"(more than max_processes={settings.max_processes})",
                             "raise ExecutorSettings.max_processes, or plan with fewer workers")


_SUPPORT: dict[bool, str] = {}


def _support_text(settings: ExecutorSettings) -> str:
    if not settings.limits:
        return "limits off (ExecutorSettings.limits=False)"
    if True not in _SUPPORT:
        _SUPPORT[True] = probe_limits().describe()
    return _SUPPORT[True]
