"""One simulated run of a compiled plan: the worker protocol interpreted in SimPy time.

Lean by design (FACTS: SimPy with a process per task manages 25-38k tasks/s):
one coroutine per *logical worker*, resumed straight from SimPy's queue
(:mod:`simulator.loop`), plain lists indexed by topological position, and
phases without shared resources computed arithmetically, so a task costs one
wake-up (at its counter update) plus, when it must wait, one for its
notification.  Phases that use a shared resource (finite storage bandwidth, the
serial stager) are stepped through SimPy time: a group of parallel transfers
through the :class:`~simulator.storage.SharedLink` is one wake-up, when its last
transfer completes (about 2.8 queue entries per task in all on the benchmark's
workflows).  A transfer's latency (not shared) is added
after its bytes have gone through the shared link, which leaves an uncontended
transfer's time unchanged.

Timestamps are carried exactly (``begin = max(arrival, free)``, ``end = begin +
duration``), the same recurrence as :mod:`planning.schedule`, so with no
overheads the simulated times equal the plan's analytical schedule bit for bit;
SimPy only orders the events.

What a worker does is :class:`planning.protocol.WorkerProtocol`'s to decide:
``handle_inputs`` (fetch in parallel what this worker did not produce),
``handle_execution``, ``handle_output`` (store or keep), then - after the output
is stored - one coordination round trip decrements the children's counters and
``handle_downstream`` says which ready children run here and which workers to
invoke or start.  The world around it is the :class:`~simulator.platform.Platform`.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import simpy

from planning.gcpause import paused_gc
from simulator.host import SharedCpu
from simulator.loop import Coroutine, spawn, wake
from simulator.loop import run as run_until_idle
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.storage import FifoServer, SharedLink

_BYTES_PER_GB = 1e9


@dataclass
class Draws:
    """Sampled noise of one replication: per-task execution seconds and ratio pools."""

    exec_s: np.ndarray
    exec_ratio: np.ndarray | None
    download: np.ndarray
    upload: np.ndarray
    cold: np.ndarray
    warm: np.ndarray


def draw(model: CompiledModel, rng: np.random.Generator) -> Draws:
    """Sample one replication's durations (a fixed order of RNG calls: reproducible under a seed)."""
    n = max(model.n, 1)
    if model.durations is not None:
        exec_s, ratio = model.durations, None
    else:
        exec_s = model.estimates.sample_exec(rng, model.planned_column)
        base = model.estimates.base_exec_s[np.arange(model.n), model.planned_column]
        ratio = np.divide(exec_s, base, out=np.ones_like(exec_s), where=base > 0)
    noise = model.noise()
    pool = 2 * n + len(model.sinks) + 16
    return Draws(exec_s, ratio,
                 noise.download[rng.integers(0, len(noise.download), size=pool)],
                 noise.upload[rng.integers(0, len(noise.upload), size=pool)],
                 noise.cold[rng.integers(0, len(noise.cold), size=n + 1)],
                 noise.warm[rng.integers(0, len(noise.warm), size=n + 1)])


class _Pool:
    """Ratios consumed in order (1.0 everywhere when deterministic)."""

    def __init__(self, values: np.ndarray | None) -> None:
        self.values = None if values is None else values.tolist()
        self.k = 0

    def next(self) -> float:
        if self.values is None:
            return 1.0
        v = self.values[self.k % len(self.values)]
        self.k += 1
        return v


@dataclass
class RunResult:
    """Raw per-task and per-worker columns of one run (topological task order)."""

    makespan_s: float
    cost: float
    tasks: dict[str, list] = field(default_factory=dict)
    workers: dict[str, list] = field(default_factory=dict)


class Run:
    """Interpret the protocol for one plan on one platform; call :meth:`run` once."""

    def __init__(self, model: CompiledModel, platform: Platform, draws: Draws | None = None,
                 record: bool = True, warm_pool: dict[str, int] | None = None) -> None:
        self.m = model
        self.p = platform
        self.record = record
        self.env = simpy.Environment()
        #: the host's shared cores and its launcher (None: every worker has its own CPUs, starts in parallel)
        self.cpu = SharedCpu(self.env, platform.host_cores, platform.host_background) if platform.shared_host else None
        #: start requests waiting for the launcher, which hands them to processes one at a time
        self.launch_queue: deque[tuple[str, Coroutine]] = deque()
        self.launcher_idle = True
        self.launcher = spawn(self.env, self._launcher) if self.cpu is not None else None
        # the tables-driven worker computes executions and start-ups arithmetically: not on a shared host
        self.static = model.static_tables() if self.cpu is None else None
        self.protocol = model.protocol if self.static is None else None
        n = model.n
        self.exec_s = (draws.exec_s if draws is not None else model.exec_deterministic()).tolist()
        self.exec_ratio = None if draws is None or draws.exec_ratio is None else draws.exec_ratio.tolist()
        #: the cores each task's execution keeps busy at most on a shared host: its whole quota for a threaded
        #: kind (planning.costs.threads), else ``task_parallelism``
        self.parallelism = np.where(model.threaded, math.inf, platform.task_parallelism).tolist() \
            if self.cpu is not None else None
        self.down = _Pool(None if draws is None else draws.download)
        self.up = _Pool(None if draws is None else draws.upload)
        self.cold = _Pool(None if draws is None else draws.cold)
        self.warm = _Pool(None if draws is None else draws.warm)
        self.counter = list(model.indegree)
        self.arrival: list[float | None] = [None] * n
        self.ready = [math.nan] * n
        self.states: dict[str, Any] = {}
        self.waiting: dict[str, tuple[int, simpy.Event]] = {}
        #: idle processes per profile, by the time they stopped; the warm pool at t = 0 stopped at 0
        self.idle: dict[str, list[float]] = {prof: [0.0] * int(count) for prof, count in (warm_pool or {}).items()}
        #: how many entries at the bottom of each idle stack are the warm pool's (processes that have not
        #: loaded this run's specification yet)
        self.from_pool: dict[str, int] = {prof: int(count) for prof, count in (warm_pool or {}).items()}
        self.dispatcher = FifoServer()
        self.stager = FifoServer()
        self.shared = math.isfinite(platform.storage_bandwidth_Bps) or platform.staging_s_per_GB > 0
        self.link = SharedLink(self.env, platform.storage_bandwidth_Bps) if math.isfinite(
            platform.storage_bandwidth_Bps) else None
        self.stage_rate = platform.staging_s_per_GB / _BYTES_PER_GB
        self.makespan = 0.0
        self.completed = 0
        cols = ("worker", "profile", "cold_start", "startup_s", "worker_start_s", "download_start_s",
                "download_end_s", "exec_start_s", "exec_end_s", "upload_end_s", "done_s", "output_bytes")
        self.t: dict[str, list] = {c: [None] * n for c in cols} if record and self.static is None else {}
        #: static runs record (task, download start, download end, done) per task; the other columns follow
        #: from these, the tables and the worker rows (:meth:`_static_columns`)
        self.rows: list[tuple] = []
        self.w: dict[str, list] = {c: [] for c in ("worker", "profile", "cold_start", "start_s", "ready_s", "stop_s",
                                                   "busy_s", "tasks", "startup_s")}

    # ------------------------------------------------------------------ driving
    def run(self) -> RunResult:
        p = self.p
        start = p.workflow_start_s
        for inv in (self.static.initial if self.static is not None else self.protocol.initial_invocations()):
            i = self.m.index[inv.task]
            self.ready[i] = start
            self._release(i, inv.worker, inv.start, start, None)
        with paused_gc():
            run_until_idle(self.env, self.link)
        if self.completed < self.m.n:
            unfinished = [self.m.ids[i] for i in range(self.m.n) if self.ready[i] != self.ready[i]
                          or self.arrival[i] is None] or ["?"]
            from planning.errors import PlanError
            raise PlanError(f"the simulation stalled: {len(unfinished)} task(s) never ran, e.g. {unfinished[0]!r}",
                            "check the plan's worker sequences and the protocol's decisions")
        w = self.w
        cost = 0.0
        price = self.m.price
        for prof, a, b in zip(w["profile"], w["start_s"], w["stop_s"]):
            cost += (b - a) * price[prof]
        tasks = self._static_columns() if self.static is not None and self.record else dict(self.t)
        if self.record:
            tasks["ready_s"] = self.ready
        return RunResult(self.makespan, cost, tasks, w)

    # ------------------------------------------------------------------ messages
    def _release(self, i: int, worker: str, start: bool, t_ready: float, sender: str | None) -> None:
        """Task ``i`` became ready at ``t_ready``: per-level delay, serial dispatch, then the message."""
        p = self.p
        t = t_ready + p.level_delay_s
        if p.dispatch_s > 0:
            t = self.dispatcher.serve(t, p.dispatch_s)
        if worker == sender:
            self.arrival[i] = t        # a continuation: the worker already queued it
            return
        t = t + p.invoke_s
        delay = t - self.env._now
        if delay > 0 and start:
            wake(self.env, _Message(self, i, worker, t), None, delay)
        else:
            self._deliver(i, worker, start, t)

    def _deliver(self, i: int, worker: str, start: bool, t: float) -> None:
        """The message reaches ``worker`` at ``t``.

        A start runs at ``t`` (the keep-alive pool must be looked at then).  A
        notification is recorded at once with its arrival time ``t``: a busy worker
        begins the task at ``max(t, free)`` when it gets to it (stepping to that time
        only before using a shared resource), and a worker waiting for this very task
        is woken at ``t`` - one event either way.
        """
        if self.static is not None:
            self.arrival[i] = t
            if start:
                spawn(self.env, self._static_worker, worker, t)
                return
        else:
            proto = self.protocol
            state = self.states.get(worker)
            if state is None:
                state = self.states[worker] = proto.new_state(worker)
            proto.notified(state, self.m.ids[i])
            self.arrival[i] = t
            if start:
                spawn(self.env, self._worker, worker, state, t)
                return
        waiting = self.waiting.get(worker)
        if waiting is not None and waiting[0] == i:
            del self.waiting[worker]
            now = self.env._now
            wake(self.env, waiting[1], None, t - now if t > now else 0.0)

    # ------------------------------------------------------------------ a logical worker
    def _worker(self, w: str, state: Any, start: float, me: Coroutine) -> Iterator[float | None]:
        env, p, m, proto = self.env, self.p, self.m, self.protocol
        index, exec_s, rec = m.index, self.exec_s, self.record
        planned_profile, children_ids = m.planned_profile, m.children_ids
        arrival, counter, ready_at = self.arrival, self.counter, self.ready
        next_task, handle_inputs, handle_execution = proto.next_task, proto.handle_inputs, proto.handle_execution
        handle_output, task_done = proto.handle_output, proto.task_done
        handle_downstream, after_downstream = proto.handle_downstream, proto.after_downstream
        release, down_next, up_next = self._release, self.down.next, self.up.next
        profile = state.profile
        if self.cpu is None:
            warm, startup = self._started(profile, start)
            free = start + startup
        else:
            warm, free = yield from self._host_start(profile, start, me)
            startup = free - start
        first, busy, count = True, 0.0, 0
        ran: set[str] = set()
        latency, shared, overhead, coord = p.storage_latency_s, self.shared, p.task_overhead_s, p.coordination_s
        if rec:
            T = self.t
            (c_worker, c_profile, c_cold, c_startup, c_wstart, c_dstart, c_dend, c_xstart, c_xend, c_uend, c_done,
             c_out) = (T[k] for k in ("worker", "profile", "cold_start", "startup_s", "worker_start_s",
                                      "download_start_s", "download_end_s", "exec_start_s", "exec_end_s",
                                      "upload_end_s", "done_s", "output_bytes"))
        while True:
            task = next_task(state)
            if task is None:
                break
            i = index[task]
            a = arrival[i]
            if a is None:
                self.waiting[w] = (i, me)
                yield
                a = arrival[i]
            begin = a if a > free else free
            fetch = handle_inputs(task, w, ran).fetch
            if fetch and shared:
                if begin > env._now:
                    yield begin - env._now
                dend, _ = yield from self._move([f.nbytes for f in fetch], self.down, me)
                if dend < begin:
                    dend = begin
            elif fetch:
                download = 0.0   # free bandwidth: only latencies, in parallel
                for f in fetch:
                    if f.nbytes > 0:
                        d = latency * down_next()
                        if d > download:
                            download = d
                dend = begin + download
            else:
                dend = begin
            xs = dend + overhead
            used = handle_execution(task, w).profile
            if used == planned_profile[i]:
                seconds = exec_s[i]
            else:
                seconds = m.exec_on(i, used, None if self.exec_ratio is None else self.exec_ratio[i])
            if self.cpu is None:
                xe = xs + seconds
            else:
                if xs > env._now:
                    yield xs - env._now
                xe = yield from self._on_cpu(seconds, used, self.parallelism[i], me)
            out = handle_output(task, w)
            nbytes = out.nbytes
            at_tdec = False
            if out.store and nbytes > 0:
                if shared:
                    if xe > env._now:
                        yield xe - env._now
                    done, at_tdec = yield from self._move([nbytes], self.up, me, coord)
                else:
                    done = xe + latency * up_next()
            else:
                done = xe
            task_done(state, task)
            ran.add(task)
            if rec:
                c_worker[i] = w
                c_profile[i] = used
                c_cold[i] = first and not warm
                c_startup[i] = startup if first else 0.0
                c_wstart[i] = start if first else free
                c_dstart[i] = begin
                c_dend[i] = dend
                c_xstart[i] = xs
                c_xend[i] = xe
                c_uend[i] = done
                c_done[i] = done
                c_out[i] = nbytes
            busy += done - begin
            count += 1
            # the output is stored; one round trip updates the children's counters
            tdec = done + coord
            if not at_tdec:   # (an upload through the link already resumed us at tdec)
                delay = tdec - env._now
                yield delay if delay > 0 else 0.0
            kids = children_ids[i]
            ready = []
            if kids:
                for c in kids:
                    j = index[c]
                    counter[j] -= 1
                    if counter[j] == 0:
                        ready.append(c)
                        ready_at[j] = tdec
            else:
                self._client_fetch(i, tdec)
            decision = handle_downstream(task, w, ready)
            after_downstream(state, decision)
            for c in decision.run_here:
                release(index[c], w, False, tdec, w)
            for inv in decision.invocations:
                release(index[inv.task], inv.worker, inv.start, tdec, w)
            free = tdec
            first = False
        self._stopped(w, profile, warm, start, startup, free, busy, count)

    def _static_worker(self, w: str, start: float, me: Coroutine) -> Iterator[float | None]:
        """:meth:`_worker` for the base protocol on a static plan: its decisions are looked up, not asked.

        The same steps, events and arithmetic in the same order (so the same results bit
        for bit); only the per-task hook calls and protocol state are replaced by the
        tables of :meth:`CompiledModel.static_tables`.
        """
        env, p, st = self.env, self.p, self.static
        exec_s, rec = self.exec_s, self.record
        arrival, counter, ready_at = self.arrival, self.counter, self.ready
        fetch_of, store_of, out_of, downstream_of = st.fetch, st.store, st.out_bytes, st.downstream
        release, down_next, up_next = self._release, self.down.next, self.up.next
        waiting, client_fetch, move = self.waiting, self._client_fetch, self._move
        down_pool, up_pool = self.down, self.up
        profile = st.profile[w]
        warm, startup = self._started(profile, start)
        free = start + startup
        busy, count = 0.0, 0
        latency, shared, overhead, coord = p.storage_latency_s, self.shared, p.task_overhead_s, p.coordination_s
        level_delay, dispatch, dispatcher = p.level_delay_s, p.dispatch_s, self.dispatcher
        rows_append = self.rows.append
        fast = self.link is not None and not self.stage_rate > 0   # shared storage is the link alone
        transfers = self.link.transfers if self.link is not None else None
        fetch_sized = st.fetch_sized
        deterministic = self.down.values is None and self.up.values is None
        for i in st.sequence.get(w, ()):
            a = arrival[i]
            if a is None:
                waiting[w] = (i, me)
                yield
                a = arrival[i]
            begin = a if a > free else free
            fetch = fetch_of[i]
            at_xe = False
            if fetch and shared:
                if begin > env._now:
                    yield begin - env._now
                if fast:   # _move's link path, inlined
                    sizes, lats = fetch_sized[i], latency
                    if not deterministic:
                        ratios = [down_next() for _ in sizes]
                        sizes = [nb * r for nb, r in zip(sizes, ratios)]
                        lats = [latency * r for r in ratios]
                    if not sizes:
                        dend = env._now
                    elif store_of[i] and out_of[i] > 0:
                        # an upload follows: the downloads' event resumes us when it may start, at
                        # xe = (max(downloads' end, begin) + overhead) + execution
                        transfers(sizes, lats, env._now, (begin, overhead, exec_s[i]), me)
                        dend = yield
                        at_xe = True
                    else:
                        transfers(sizes, lats, env._now, None, me)
                        dend = yield
                elif store_of[i] and out_of[i] > 0:
                    # an upload follows: the downloads' event resumes us when it may start (at xe)
                    dend, at_xe = yield from move(fetch, down_pool, me, (begin, overhead, exec_s[i]))
                else:
                    dend, _ = yield from move(fetch, down_pool, me)
                if dend < begin:
                    dend = begin
            elif fetch:
                download = 0.0   # free bandwidth: only latencies, in parallel
                for nb in fetch:
                    if nb > 0:
                        d = latency * down_next()
                        if d > download:
                            download = d
                dend = begin + download
            else:
                dend = begin
            xs = dend + overhead
            xe = xs + exec_s[i]
            nbytes = out_of[i]
            at_tdec = False
            if store_of[i] and nbytes > 0:
                if shared:
                    if not at_xe and xe > env._now:
                        yield xe - env._now
                    if fast:   # _move's link path, inlined (nbytes > 0)
                        r = 1.0 if deterministic else up_next()
                        transfers([nbytes * r], latency * r, env._now, coord, me)
                        done = yield
                        at_tdec = True
                    else:
                        done, at_tdec = yield from move([nbytes], up_pool, me, coord)
                else:
                    done = xe + latency * up_next()
            else:
                done = xe
            if rec:   # (one short tuple per task: sequential memory, little to convert at the end)
                rows_append((i, begin, dend, done))
            busy += done - begin
            count += 1
            # the output is stored; one round trip updates the children's counters
            tdec = done + coord
            if not at_tdec:   # (an upload through the link already resumed us at tdec)
                delay = tdec - env._now
                yield delay if delay > 0 else 0.0
            kids = downstream_of[i]
            if kids:
                ready = []
                for kid in kids:
                    j = kid[0]
                    counter[j] -= 1
                    if counter[j] == 0:
                        ready.append(kid)
                        ready_at[j] = tdec
                # run_here first, then invocations (handle_downstream's order)
                for j, here, cw, cstart in ready:
                    if here:
                        t = tdec + level_delay
                        if dispatch > 0:
                            t = dispatcher.serve(t, dispatch)
                        arrival[j] = t        # a continuation: this worker already queued it
                for j, here, cw, cstart in ready:
                    if not here:
                        release(j, cw, cstart, tdec, w)
            else:
                client_fetch(i, tdec)
            free = tdec
        self._stopped(w, profile, warm, start, startup, free, busy, count)

    def _static_columns(self) -> dict[str, Any]:
        """The per-task columns of a static run (topological order), vectorised from its rows.

        :meth:`_static_worker` records only what depends on contention: each task's
        download start and end and its done time.  The rest is what the worker computes
        from them, with the same floating-point operations (so the same values bit for
        bit): execution starts ``overhead`` after the downloads and lasts ``exec_s``; the
        output stored is the table's; a worker starts its first task at its own start
        (after its start-up, cold or warm) and each later one at the counter update of
        the one before (``done + coordination``).  (Every task ran: :meth:`run` checked.)
        """
        n, st, p = self.m.n, self.static, self.p
        placement = st.placement
        order, begin, dend, done = zip(*self.rows) if self.rows else ((), (), (), ())
        order = np.asarray(order, dtype=np.int64)

        def scattered(values: tuple) -> np.ndarray:
            out = np.empty(n, dtype=np.float64)
            out[order] = values
            return out

        tasks: dict[str, Any] = {"download_start_s": scattered(begin), "download_end_s": scattered(dend),
                                 "done_s": scattered(done)}
        tasks["exec_start_s"] = tasks["download_end_s"] + p.task_overhead_s
        tasks["exec_end_s"] = tasks["exec_start_s"] + np.asarray(self.exec_s, dtype=np.float64)
        tasks["upload_end_s"] = tasks["done_s"].copy()    # the output is stored when the task is done
        tasks["output_bytes"] = np.asarray(st.out_bytes, dtype=np.float64)
        # per worker (by placement code): cold or warm, start, start-up
        W = self.w
        code_of = {name: k for k, name in enumerate(placement.workers)}
        codes = np.fromiter((code_of[w] for w in W["worker"]), dtype=np.int64, count=len(W["worker"]))
        per_worker = {}
        for name in ("cold_start", "start_s", "startup_s"):
            column = np.zeros(len(placement.workers), dtype=bool if name == "cold_start" else np.float64)
            column[codes] = W[name]
            per_worker[name] = column[placement.worker_code]
        first = placement.first
        tasks["cold_start"] = first & per_worker["cold_start"]
        tasks["startup_s"] = np.where(first, per_worker["startup_s"], 0.0)
        # a worker's later tasks start at the counter update of its task before (in its sequence)
        flat = np.fromiter(itertools.chain.from_iterable(st.sequence.values()), dtype=np.int64, count=n)
        previous = np.zeros(n, dtype=np.int64)
        previous[flat[1:]] = flat[:-1]
        tasks["worker_start_s"] = np.where(first, per_worker["start_s"], tasks["done_s"][previous] + p.coordination_s)
        tasks["worker"] = st.worker
        profile = st.profile
        tasks["profile"] = [profile[w] for w in st.worker]
        return tasks

    # ------------------------------------------------------------------ a worker's life
    def _started(self, profile: str, start: float) -> tuple[bool, float]:
        """A worker of ``profile`` starts at ``start``: (warm, its start-up seconds)."""
        if self._take_warm(profile, start):
            return True, self.p.warm_start_s * self.warm.next()
        return False, self.p.cold_start_s * self.cold.next()

    def _stopped(self, w: str, profile: str, warm: bool, start: float, startup: float, stop: float,
                 busy: float, tasks: int) -> None:
        """Record a worker that ran its last task; its process idles (warm) from ``stop``."""
        self.completed += tasks
        W = self.w
        W["worker"].append(w)
        W["profile"].append(profile)
        W["cold_start"].append(not warm)
        W["start_s"].append(start)
        W["ready_s"].append(start + startup)
        W["stop_s"].append(stop)
        W["busy_s"].append(busy)
        W["tasks"].append(tasks)
        W["startup_s"].append(startup)
        self.idle.setdefault(profile, []).append(stop)

    def _host_start(self, profile: str, start: float, me: Coroutine) -> Iterator[float | None]:
        """A worker's start on a shared host: (warm, when it is ready to run its first task).

        Its start request waits its turn at the launcher (:meth:`_launcher`), which
        gives it an idle process of its profile (warm) or forks one (cold); then its
        start-up is single-threaded CPU work inside the worker's CPU limit, plus the
        loading of the run's specification (``spec_load_s`` and ``spec_load_s_per_task``
        per task of the workflow) when the process serves this run for the first time.
        The start-up terms are seconds on one whole core: a 0.5-CPU worker takes twice
        as long (measured: cold starts of 0.5-CPU workers took 2x those of 1- and 2-CPU
        ones, in the profile phase and in the fidelity benchmark's runs alike).
        """
        p, env = self.p, self.env
        if start > env._now:
            yield start - env._now
        self.launch_queue.append((profile, me))
        if self.launcher_idle:      # served now, before anything else happens at this instant
            self.launcher_idle = False
            self.launcher.value = None
            self.launcher.resume()
        warm, new_to_run = yield
        seconds = p.warm_start_s * self.warm.next() if warm else p.cold_start_s * self.cold.next()
        if new_to_run:
            seconds += p.spec_load_s + p.spec_load_s_per_task * self.m.n
        cap = min(self.m.cpus[profile], 1.0, p.host_cores)
        self.cpu.run(seconds, cap, me)     # ``seconds`` of one core's work, at up to ``cap`` cores
        ready = yield
        return warm, ready

    def _launcher(self, me: Coroutine) -> Iterator[float | None]:
        """The launcher: start requests, one at a time in arrival order (FACTS: one loop forks every worker).

        Whether a request gets an idle process is decided when the launcher gets to
        it, as the real one does, so a burst of starts reuses processes that the
        burst's first workers free meanwhile.  Its own work (``launch_s``, plus
        ``process_start_s`` for a fork) is single-threaded CPU work on the shared host:
        it slows down when the host is busy, as the real launcher process does.
        """
        p, queue = self.p, self.launch_queue
        while True:
            if not queue:
                self.launcher_idle = True
                yield               # _host_start resumes us with a new request
                continue
            profile, worker = queue.popleft()
            warm = self._take_warm(profile, self.env._now)
            # a process's first logical worker of this run loads the run's specification first
            new_to_run = not warm or self._took_from_pool(profile)
            busy = p.launch_s + (0.0 if warm else p.process_start_s)
            if busy > 0:
                self.cpu.run(busy, 1.0, me)
                yield
            wake(self.env, worker, (warm, new_to_run), 0.0)

    def _on_cpu(self, seconds: float, profile: str, parallelism: float, me: Coroutine) -> Iterator[float | None]:
        """Run ``seconds`` (as measured alone on ``profile``) of CPU work on the shared host; returns its end."""
        cap = min(self.m.cpus[profile], parallelism, self.p.host_cores)
        self.cpu.run(seconds * cap, cap, me)
        end = yield
        return end

    # ------------------------------------------------------------------ keep-alive
    def _took_from_pool(self, profile: str) -> bool:
        """Whether the idle process just taken (the top of the stack) was one of the warm pool's."""
        pooled = self.from_pool.get(profile, 0)
        if pooled > len(self.idle.get(profile, ())):
            self.from_pool[profile] = pooled - 1
            return True
        return False

    def _take_warm(self, profile: str, t: float) -> bool:
        """Reuse the most recently stopped idle process of ``profile`` if it is still warm at ``t``."""
        stack = self.idle.get(profile)
        if not stack:
            return False
        stopped = stack[-1]
        if t - stopped < self.p.keep_alive_s and stopped <= t:
            stack.pop()
            return True
        if t - stopped >= self.p.keep_alive_s:
            stack.clear()      # older processes stopped even earlier: all cold now
            self.from_pool.pop(profile, None)
        return False

    # ------------------------------------------------------------------ storage
    def _move(self, sizes: list[float], pool: _Pool, me: Coroutine, then: Any = None) -> Iterator[float | None]:
        """Transfers in parallel through the serial stager and the shared link; returns ``(end, at_then)``.

        Each transfer's bytes share the link; its latency (not shared) is added after
        them, which leaves an uncontended transfer's time unchanged and costs no event.
        The transfers through the link are one group with one completion event; with
        ``then`` (as :meth:`SharedLink.transfers` takes it) that event resumes the caller
        at that later time instead (``at_then`` is True), saving the caller's own timeout.
        """
        env = self.env
        if self.stage_rate > 0:
            total = 0.0
            for s in sizes:
                if s > 0:
                    total += s
            if total > 0:
                end = self.stager.serve(env._now, total * self.stage_rate)
                if end > env._now:
                    yield end - env._now
        link, latency = self.link, self.p.storage_latency_s
        end = env._now
        if link is not None:
            ratios = [pool.next() for s in sizes if s > 0]
            if not ratios:
                return end, False
            scaled = [s * r for s, r in zip([s for s in sizes if s > 0], ratios)]
            link.transfers(scaled, [latency * r for r in ratios], end, then, me)
            end = yield
            return end, then is not None
        for s in sizes:
            if s <= 0:
                continue
            r = pool.next()
            if env._now + latency * r > end:
                end = env._now + latency * r
        return end, False

    def _client_fetch(self, i: int, t: float) -> None:
        """The client downloads a sink's result; the makespan is when it holds the last one."""
        nbytes = self.m.sink_bytes[i]
        if nbytes <= 0:
            self.makespan = max(self.makespan, t)
            return
        r = self.down.next()
        latency = self.p.storage_latency_s * r
        if self.link is None:
            self.makespan = max(self.makespan, t + latency)
            return
        # the group's value is when the client holds the result: the bytes' completion plus the latency
        self.link.transfers([nbytes * r], latency, self.env._now, None, _Held(self))


class _Message:
    """A start message in flight to ``worker``: delivered (:meth:`Run._deliver`) when :func:`loop.run` resumes it."""

    __slots__ = ("run", "task", "worker", "at", "value")

    def __init__(self, run: Run, task: int, worker: str, at: float) -> None:
        self.run, self.task, self.worker, self.at = run, task, worker, at

    def resume(self) -> None:
        self.run._deliver(self.task, self.worker, True, self.at)


class _Held:
    """The client's download of a sink: when it completes, the client holds the result (a makespan candidate)."""

    __slots__ = ("run", "value")

    def __init__(self, run: Run) -> None:
        self.run = run

    def resume(self) -> None:
        if self.value > self.run.makespan:
            self.run.makespan = self.value
