"""One run of a plan on the executor: submission, waiting, recovery from dead workers, cleanup.

Submitting costs one pipelined round trip: the run's liveness key, the worker
protocol over the code-less workflow (stored once, fetched once per worker
process), the counters of tasks with several parents, large constants (once, by
content hash), the sub-DAGs too large to travel inline, the initial invocations
(start invocations to the run's own launch queue, with their sub-DAG inline when
small; notifications to inboxes) and a ``serve`` message to the executor's
launcher.  Every key gets the run's TTL and every pickle is sealed.

A worker reported dead (by its launcher, or by its lease) is started again as
the next *generation* of its logical worker, which recovers what the dead one
committed (:mod:`executor.recovery`); the run fails only when one task has
killed its worker more than ``max_task_kills`` times, naming the task and the cause.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import asdict
from typing import Any

import redis

from executor import codec, keys
from executor.auth import RunSealer
from executor.messages import decode_batch, decode_error, encode_note, encode_start, output_label
from executor.recovery import done_numbers
from executor.server import redacted_url
from executor.settings import ExecutorSettings
from executor.tracing import build_trace
from executor.wire import Wire
from executor.worker import RunSpec
from planning.errors import ExecutionError
from planning.protocol import Invocation, WorkerProtocol
from planning.workflow import Workflow

__all__ = ["Run", "thread_share", "task_timeouts"]


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




def task_timeouts(workflow: Workflow, plan, settings: ExecutorSettings) -> dict[str, float]:
    """Each task's timeout in seconds (a task absent from the result has none).

    Most specific first: the plan's per-task annotation ``plan.annotations["timeout_s"]``
    (a planner's or the user's), then ``settings.task_timeout_s`` for every task, then
    ``max(task_timeout_min_s, task_timeout_factor x the planned execution time)`` -
    replay tasks burn ``scale`` times their runtime, so their estimate is scaled too.
    """
    annotated = dict((getattr(plan, "annotations", None) or {}).get("timeout_s") or {})
    for task_id, value in annotated.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 366 * 86400:
            raise ExecutionError(f"the plan's timeout_s annotation of task {task_id!r} is {value!r}",
                                 "annotate a number of seconds > 0 (at most a year)")
    tasks = plan.tasks
    planned = (tasks["exec_end_s"] - tasks["exec_start_s"]).to_dict() if len(tasks) else {}
    out = {}
    for t in workflow.tasks:
        if t.id in annotated:
            out[t.id] = float(annotated[t.id])
            continue
        if settings.task_timeout_s > 0:
            out[t.id] = float(settings.task_timeout_s)
            continue
        estimate = float(planned.get(t.id, 0.0))
        if not math.isfinite(estimate) or estimate < 0:
            estimate = 0.0
        if t.func is None:
            estimate *= settings.scale
        out[t.id] = max(settings.task_timeout_min_s, settings.task_timeout_factor * estimate)
    return {t: v for t, v in out.items() if v > 0}


class Run:
    """Submission, waiting, recovery and cleanup of one run (``Executor.run`` makes one)."""

    def __init__(self, ex: Any, workflow: Workflow, plan: Any, run_id: str, protocol: WorkerProtocol,
                 sealer: RunSealer) -> None:
        self.ex = ex
        self.s = ex.settings
        self.r: redis.Redis = ex.client
        self.workflow = workflow
        self.plan = plan
        self.run_id = run_id
        self.k = keys.RunKeys(run_id)
        self.protocol = protocol
        self.sealer = sealer
        self.ttl_ms = int(self.s.key_ttl_s * 1000)
        self.generation: dict[str, int] = {}
        self.kills: dict[str, int] = {}
        self.pending_starts: dict[str, tuple[int, float]] = {}   # re-run starts not claimed yet
        self.deaths_after_results: list[str] = []
        self.deaths: list[str] = []
        self.finishing = False
        self.aborted = False

    # ------------------------------------------------------------------ submit
    def _prepare(self) -> tuple[RunSpec, dict[str, bytes], dict[str, bytes]]:
        wf = self.workflow
        proto = copy.copy(self.protocol)
        proto.workflow = codec.skeleton(wf)
        coded = frozenset(t.id for t in wf.tasks if t.func is not None)
        constants: dict[str, bytes] = {}
        codes = {t.id: codec.split_constants(t, self.s.constant_threshold_bytes, constants)
                 for t in wf.tasks if t.func is not None}
        constants = {d: self.sealer.seal(b"const:" + d.encode(), data) for d, data in constants.items()}
        share = thread_share(self.plan) if self.s.threads == "fair" else 1.0
        profiles = {p.name: (float(p.cpus), float(p.memory_mb), max(1, math.floor(float(p.cpus) * share + 1e-9)))
                    for p in self.plan.catalog}
        spec = RunSpec(proto, self.s, coded, 0.0, profiles, timeouts=task_timeouts(wf, self.plan, self.s))
        if self.protocol.dynamic:
            groups = {"*": codes}
        else:
            groups = {w: {t: codes[t] for t in seq if t in codes} for w, seq in self.protocol.sequence.items()}
        subs = {w: self.sealer.seal(b"sub:" + w.encode(), codec.dumps_code(g)) for w, g in groups.items()}
        return spec, constants, subs

    def execute(self) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """Submit, wait, clean up: (sink results, trace, meta).  Failures raise :class:`ExecutionError`."""
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
            self._cancel()
        with contextlib.suppress(Exception):
            self._cleanup(keep_metrics=True)

    def _lost_server(self, exc: Exception) -> ExecutionError:
        server = getattr(self.ex._endpoint, "server", None)
        if server is not None and not server.running:
            where = "the embedded Redis-protocol server died"
        else:
            where = f"the connection to the Redis server at {redacted_url(self.ex.url)} was lost"
        return ExecutionError(f"{where} during run {self.run_id} ({type(exc).__name__}: {exc}); the run is lost",
                              "check the server (memory, a restart, the network) and run again")

    def _execute(self) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        if self.r.exists(self.k.live, self.k.metrics):
            raise ExecutionError(f"run id {self.run_id!r} is already in use on this server",
                                 "pass another run_id, or none to get a fresh one")
        prep0 = time.perf_counter()
        self.spec, constants, self.subs = spec, constants, subs = self._prepare()
        initial = self.protocol.initial_invocations()
        self.inline = {inv.worker for inv in initial if inv.start and not self.protocol.dynamic
                       and len(subs[inv.worker]) < self.s.inline_threshold_bytes}
        spec_blob = self.sealer.seal(b"spec", codec.dumps_code(spec))
        prepare_s = time.perf_counter() - prep0
        t0 = self._t0 = time.time()  # submission: everything before is preparation (meta prepare_s)
        ttl = self.ttl_ms
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.k.live, "1", px=ttl)
        pipe.set(self.k.protocol, spec_blob, px=ttl)
        for digest, data in constants.items():
            pipe.set(self.k.const(digest), data, px=ttl)
        multi = {t: n for t, n in spec.n_parents.items() if n > 1}
        if multi:
            pipe.hset(self.k.deps, mapping=multi)
            pipe.pexpire(self.k.deps, ttl)
        for w, blob in subs.items():
            if w not in self.inline:
                pipe.set(self.k.subdag(w), blob, px=ttl)
        for inv in initial:
            if inv.start:
                sub = subs[inv.worker] if inv.worker in self.inline else None
                pipe.rpush(self.k.launch, encode_start(self.sealer, inv, spec, t0, sub))
            else:
                pipe.rpush(self.k.inbox(inv.worker), encode_note(self.sealer, inv.task, t0, None, None))
                pipe.pexpire(self.k.inbox(inv.worker), ttl)
        pipe.pexpire(self.k.launch, ttl)
        if self.ex.shared_secret:   # agents of the pool share the secret: they may serve this run too
            pipe.sadd(keys.pool_runs(self.s.pool), self.run_id)
            pipe.expire(keys.pool_runs(self.s.pool), int(self.s.key_ttl_s))
        pipe.execute()
        if self.ex.launcher_id is not None:
            self.ex.control(self.ex.launcher_id, {"type": "serve", "run": self.run_id})
        return self._wait(t0, prepare_s)

    # ------------------------------------------------------------------ wait
    def _wait(self, t0: float, prepare_s: float) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        sinks = set(self.workflow.sinks())
        results: dict[str, Any] = {}
        seen: dict[str, float] = {}
        while sinks:
            for kind, rest in self._events():
                if kind == "s" and rest in sinks:
                    seen[rest] = time.time()
                    results[rest] = self._fetch_sink(rest)
                    sinks.discard(rest)
                else:
                    self._on_event(kind, rest)
        makespan = time.time() - t0
        self.finishing = True
        deadline = time.monotonic() + max(5.0, 3 * self.s.lease_s)
        while self.r.hlen(self.k.running) and time.monotonic() < deadline:   # the last metrics uploads
            for kind, rest in self._events():
                self._on_event(kind, rest)
        raw = self.r.lrange(self.k.metrics, 0, -1)
        meta = {"run_id": self.run_id, "redis": "embedded" if self.ex.embedded else redacted_url(self.ex.url),
                "settings": asdict(self.s), "prepare_s": prepare_s, "planner": getattr(self.plan, "planner", ""),
                "planned_makespan_s": float(getattr(self.plan, "makespan_s", float("nan"))),
                "dynamic": self.protocol.dynamic, "started_workers": int(self.r.hlen(self.k.claims)),
                "restarts": sum(self.generation.values()), "task_kills": dict(self.kills), "deaths": self.deaths,
                "deaths_after_results": self.deaths_after_results}
        trace = build_trace(self.workflow, self.protocol, self.plan.catalog, raw, t0, makespan, meta, seen,
                            decode=lambda blob: decode_batch(self.sealer, blob))
        meta["cold_starts"] = trace.cold_starts
        meta["warm_starts"] = int((~trace.workers["cold_start"]).sum()) if len(trace.workers) else 0
        self._cleanup(keep_metrics=True)
        return results, trace, meta

    def _on_event(self, kind: str, rest: str) -> None:
        if kind == "e":
            self._fail_task()
        elif kind == "d":
            self._on_death(rest)
        elif kind == "a":
            self._abort(f"launcher {rest} refused this run's start message: it failed authentication",
                        "give every agent the client's deployment secret ($PLANLAB_SECRET or $PLANLAB_SECRET_FILE)")

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
        for item in [got[1]] + (more or []):
            kind, _, rest = item.decode(errors="replace").partition("|")
            yield kind, rest

    def _fetch_sink(self, task_id: str) -> Any:
        data = self.r.get(self.k.out(task_id))
        if data is None:
            raise ExecutionError(f"sink {task_id!r} reported done but its result is not on the server",
                                 "report this as an executor bug")
        if task_id not in self._coded:
            return data
        return codec.loads_value(self.sealer.open(output_label(task_id), data))

    @property
    def _coded(self) -> set[str]:
        if not hasattr(self, "_coded_cache"):
            self._coded_cache = {t.id for t in self.workflow.tasks if t.func is not None}
        return self._coded_cache

    # ------------------------------------------------------------------ watchdog and recovery
    def _watchdog(self) -> None:
        if self.ex.local_launcher_alive() is False:
            self._abort("the executor's local launcher process died", "see its output above; re-open the Executor")
        if self.s.run_timeout_s and time.time() - self._t0 > self.s.run_timeout_s:
            self._abort(f"run {self.run_id} did not finish within run_timeout_s={self.s.run_timeout_s:g} s",
                        "raise ExecutorSettings.run_timeout_s, or check the plan with 'planlab plan'")
        self._check_pending_starts()
        running = self.r.hgetall(self.k.running)
        if not running:
            return
        names = list(running)
        pipe = self.r.pipeline(transaction=False)
        for w in names:
            pipe.exists(self.k.lease(w.decode()))
        for w, ok in zip(names, pipe.execute()):
            if not ok and self.r.hget(self.k.running, w) == running[w]:
                self._lease_expired(w.decode(), running[w].decode())

    def _check_pending_starts(self) -> None:
        if not self.pending_starts:
            return
        names = list(self.pending_starts)
        pipe = self.r.pipeline(transaction=False)
        for w in names:
            pipe.hexists(self.k.claims, f"{w}#{self.pending_starts[w][0]}")
        for w, claimed in zip(names, pipe.execute()):
            if claimed:
                del self.pending_starts[w]
            elif time.monotonic() - self.pending_starts[w][1] > self.s.start_timeout_s:
                self._abort(f"no launcher started logical worker {w!r} again within start_timeout_s="
                            f"{self.s.start_timeout_s:g} s after its worker died",
                            "check that a launcher serves the run (the local one, or 'planlab agent' processes)")

    def _lease_expired(self, worker: str, holder: str) -> None:
        launcher, pid, host = (holder.split(":", 2) + ["?", "?"])[:3]
        how = (f"its lease of {self.s.lease_s:g} s expired (worker process {pid} on {host} stopped answering, "
               f"with its launcher {launcher})")
        if not self._other_launchers(launcher):
            self._fail_death(worker, "", how)
        self._on_death(f"{worker}|{self.generation.get(worker, 0)}||{how}")

    def _other_launchers(self, lost: str) -> list[str]:
        """Launchers other than ``lost`` that are alive and would serve this run's next start."""
        found = []
        if self.ex.launcher_id and self.ex.launcher_id != lost and self.ex.local_launcher_alive():
            found.append(self.ex.launcher_id)
        if self.ex.shared_secret:
            for key in self.r.scan_iter(match="pl:launcher:*", count=1000):
                name = key.decode()[len("pl:launcher:"):]
                if name != lost and self.r.get(key) == self.s.pool.encode():
                    found.append(name)
        return found

    def _on_death(self, rest: str) -> None:
        worker, gen, task, how = (rest.split("|", 3) + ["", "", ""])[:4]
        if not gen.isdigit() or int(gen) != self.generation.get(worker, 0):
            return  # an older generation's death, already handled
        if self.finishing:  # every result is in: nothing to re-run
            self.deaths_after_results.append(f"{worker}: {how}")
            self.r.hdel(self.k.running, worker)
            return
        task = task or self._unfinished_task(worker)
        self.kills[task] = self.kills.get(task, 0) + 1
        self.deaths.append(f"{worker} (task {task}): {how}")
        if self.kills[task] > self.s.max_task_kills:
            self._fail_death(worker, task, how)
        self._restart(worker)

    def _unfinished_task(self, worker: str) -> str:
        """The first task of ``worker`` not done yet (what it was waiting for when it died)."""
        seq = self._sequence(worker)
        numbers = done_numbers(Wire(self.r), self.k.done, seq) if seq else {}
        return next((t for t in seq if numbers.get(t) is None), seq[0] if seq else worker)

    def _sequence(self, worker: str) -> list[str]:
        if self.protocol.dynamic:
            return [worker[2:]] if worker.startswith("w:") else []
        return self.protocol.sequence.get(worker, [])

    def _restart(self, worker: str) -> None:
        """Start the next generation of ``worker``: it recovers what the dead one committed."""
        gen = self.generation[worker] = self.generation.get(worker, 0) + 1
        first = self._sequence(worker)[0]
        sub = self.subs.get(worker) if worker in self.inline else None
        msg = encode_start(self.sealer, Invocation(worker, first, True), self.spec, time.time(), sub, gen=gen,
                           restart=True)
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.k.running, worker)   # a process still holding it (a lost host) is fenced off
        pipe.rpush(self.k.launch, msg)
        pipe.pexpire(self.k.launch, self.ttl_ms)
        pipe.execute()
        self.pending_starts[worker] = (gen, time.monotonic())

    # ------------------------------------------------------------------ failures
    def _fail_task(self) -> None:
        data = self.r.get(self.k.error)
        info = decode_error(self.sealer, data) if data else {"task": "?", "worker": "?",
                                                             "traceback": "(no traceback stored)", "attempts": 0}
        if info.get("internal"):
            self._abort(f"worker {info['worker']!r} hit an executor error while starting task {info['task']!r}:\n"
                        f"{info['traceback'].rstrip()}", "report this as an executor bug, with the traceback")
        if info.get("unpicklable"):
            self._abort(info["traceback"], "return a value pickle or cloudpickle can serialize (no open files, "
                                           "sockets, locks or generators)")
        retried = "" if info.get("transient", True) else " (not retried: the error is not marked transient)"
        self._abort(f"task {info['task']!r} failed on worker {info['worker']!r} after {info['attempts']} "
                    f"attempt(s){retried}:\n{info['traceback'].rstrip()}",
                    "fix the task's code or inputs (the traceback above is from the worker); if the error is "
                    "transient, raise executor.TransientError or name its class in ExecutorSettings.retry_on")

    def _fail_death(self, worker: str, task: str, how: str) -> None:
        tasks = self._sequence(worker)
        what = f" (planned tasks: {', '.join(tasks[:5])}{'...' if len(tasks) > 5 else ''})" if tasks else ""
        n = self.kills.get(task, 0)
        head = (f"task {task!r} killed its worker {n} time(s), more than max_task_kills={self.s.max_task_kills}; "
                if task else "")
        self._abort(f"{head}logical worker {worker!r}{what} died: {how}; the run was stopped",
                    "if it was killed for memory, give its tasks a profile with more memory; if it ran past its "
                    "timeout, raise ExecutorSettings.task_timeout_s (or task_timeout_factor); otherwise find what "
                    "kills it")

    def _abort(self, what: str, fix: str) -> None:
        self.aborted = True
        self._cancel()
        self._cleanup(keep_metrics=True)
        raise ExecutionError(what, fix)

    def _cancel(self) -> None:
        """Stop every process still serving this run: drop liveness, ask their launchers to kill them."""
        self.r.delete(self.k.live)
        running = self.r.hgetall(self.k.running)
        by_launcher: dict[str, list[int]] = {}
        for holder in running.values():
            lid, pid, _ = (holder.decode().split(":", 2) + ["0", ""])[:3]
            if pid.isdigit():
                by_launcher.setdefault(lid, []).append(int(pid))
        for lid, pids in by_launcher.items():
            self.ex.control(lid, {"type": "cancel", "run": self.run_id, "pids": pids})
        deadline = time.monotonic() + 3.0
        acked = 0
        while acked < len(by_launcher) and time.monotonic() < deadline:
            if self.r.blpop([self.k.acks], timeout=max(0.05, deadline - time.monotonic())) is not None:
                acked += 1

    def _cleanup(self, keep_metrics: bool) -> None:
        self.r.srem(keys.pool_runs(self.s.pool), self.run_id)
        if self.s.keep_keys:
            return
        victims = [key for key in self.r.scan_iter(match=f"{self.k.prefix}*", count=1000)
                   if key.decode() != self.k.metrics or not keep_metrics]
        for i in range(0, len(victims), 1000):
            self.r.unlink(*victims[i:i + 1000])
        if keep_metrics and self.s.metrics_ttl_s:
            self.r.expire(self.k.metrics, int(self.s.metrics_ttl_s))
