"""One simulated run of a compiled plan: the run's state, its messages, and its driving.

Lean by design (FACTS: SimPy with a process per task manages 25-38k tasks/s): one
coroutine per *logical worker* (:func:`simulator.worker_loop.worker_loop`, the one
interpreter of the protocol), resumed straight from SimPy's queue
(:mod:`simulator.loop`), plain lists indexed by topological position, and phases
without shared resources computed arithmetically.  Phases that use a shared
resource (finite storage bandwidth, the serial stager: :mod:`simulator.transfers`;
the host's cores: :mod:`simulator.lifecycle`) are stepped through SimPy time.

The run reads the protocol's decisions from its compiled tables
(:attr:`CompiledModel.tables`), or asks a dynamic protocol live; the world around
it is the :class:`~simulator.platform.Platform`.  Its raw per-task and per-worker
columns become a Trace in :mod:`simulator.columns`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.protocol import WorkerState
from simulator.columns import task_columns
from simulator import compiled, fast_loop
from simulator.dispatch import dispatcher_for
from simulator.draws import Draws, RatioPool
from simulator.host import NodeCpus, SharedCpu
from simulator.lifecycle import idle_key, launcher
from simulator.loop import Coroutine, spawn, wake
from simulator.loop import run as run_until_idle
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.staging import Stager
from simulator.storage import DuplexLink, Latest, link_for
from simulator.threads import apply_thread_rule
from simulator.transfers import download_scale, plain_transfers
from simulator.overlap_loop import overlap_for, overlap_loop
from simulator.worker_loop import live_downstream, loop_constants, worker_loop

WORKER_FIELDS = ("worker", "profile", "cold_start", "start_s", "ready_s", "stop_s", "busy_s", "tasks", "startup_s")


@dataclass
class RunResult:
    """Raw per-task and per-worker columns of one run (topological task order)."""

    makespan_s: float
    cost: float
    tasks: dict[str, list] = field(default_factory=dict)
    workers: dict[str, list] = field(default_factory=dict)
    #: on a cluster (``Platform.nodes``): the node each worker ran on, by name; empty on one host
    worker_nodes: dict[str, str] = field(default_factory=dict)


class Run:
    """Interpret the protocol for one plan on one platform; call :meth:`run` once.

    ``fast=False`` runs the general loop even where the default platform's specialised one applies
    (:mod:`simulator.fast_loop`); ``compiled_loop=False`` runs that specialised loop's Python module even
    where its compiled twin is built (:mod:`simulator.compiled`).  Neither changes a result: the tests
    compare them bit for bit.
    """

    def __init__(self, model: CompiledModel, platform: Platform, draws: Draws | None = None,
                 record: bool = True, warm_pool: dict[str, int] | None = None, fast: bool = True,
                 compiled_loop: bool = True) -> None:
        self.model = model
        self.platform = platform
        self.record = record
        self.env = simpy.Environment()
        #: the host's shared cores and its launcher (None: every worker has its own CPUs, starts in parallel)
        self.cpu: SharedCpu | NodeCpus | None = None
        #: a cluster's nodes (``Platform.nodes``: a worker shares its node's cores), None on one host
        self.nodes = NodeCpus(self.env, platform.nodes, platform.host_background) if platform.nodes else None
        if self.nodes is not None:
            self.cpu = self.nodes
        elif platform.shared_host:
            self.cpu = SharedCpu(self.env, platform.host_cores, platform.host_background)
        #: start requests waiting for the launcher, which hands them to processes one at a time
        self.launch_queue: deque[tuple[str, Coroutine]] = deque()
        self.launcher_idle = True
        self.launcher = spawn(self.env, launcher, self) if self.cpu is not None else None
        self._decisions(model, draws)
        self.down = RatioPool(None if draws is None else draws.download)
        self.up = RatioPool(None if draws is None else draws.upload)
        self.cold = RatioPool(None if draws is None else draws.cold)
        self.warm = RatioPool(None if draws is None else draws.warm)
        n = model.n
        self.counter = list(model.indegree)
        self.arrival: list[float | None] = [None] * n
        self.ready_at = [math.nan] * n
        self.states: dict[str, WorkerState] = {}
        self.waiting: dict[str, tuple[int, Coroutine]] = {}
        #: idle processes per profile, by the time they stopped; the warm pool at t = 0 stopped at 0
        self.idle: dict[str, list[float]] = {prof: [0.0] * int(count) for prof, count in (warm_pool or {}).items()}
        #: how many entries at the bottom of each idle stack are the warm pool's (processes that have not
        #: loaded this run's specification yet)
        self.from_pool: dict[str, int] = {prof: int(count) for prof, count in (warm_pool or {}).items()}
        if self.nodes is not None:   # the warm pool's processes sit on the first node offering their profile
            first = {prof: idle_key(prof, self.nodes.placer.offering(prof)[0]) for prof in self.idle}
            self.idle = {first[prof]: stack for prof, stack in self.idle.items()}
            self.from_pool = {first[prof]: count for prof, count in self.from_pool.items()}
        self.dispatcher = dispatcher_for(platform, model.tables)
        self.stager = Stager(platform)
        #: the stager's highest seconds per byte: > 0 exactly when transfers pass through it
        self.stage_rate = self.stager.highest_per_byte
        # transfers step through simulator.transfers.move: a shared link, the stager, or a shared host (a transfer's
        # CPU takes its share of the cores even with free bandwidth)
        self.shared = math.isfinite(platform.storage_bandwidth_Bps) or self.stage_rate > 0 or self.cpu is not None
        #: the storage link (uploads' and downloads' unless the platform is duplex: then the uploads') and the
        #: downloads' (the same link, or one of its own at the download rate: Platform.storage_duplex)
        self.link = link_for(self.env, platform)
        self.down_link = self.link
        if platform.storage_duplex and self.link is not None:
            self.down_link = link_for(self.env, platform, platform.download_bandwidth_Bps or None)
        #: the link's bytes per byte downloaded (Platform.download_bandwidth_Bps; 1: downloads move at the link's
        #: rate, or on a link of their own)
        self.down_scale = 1.0 if self.down_link is not self.link else download_scale(platform)
        #: every byte at the link's one rate (no download rate, no large-transfer cost): the inlined links apply
        self.plain_transfers = plain_transfers(platform)
        #: when the client holds the last sink result fetched through the link (simulator.transfers.client_fetch)
        self.held = Latest()
        self.makespan = 0.0
        self.completed = 0
        #: per task (task, download start, download end, execution end, done); the other columns follow
        self.rows: list[tuple] = []
        #: the same rows, flat (five numbers per task, one ``extend`` each): the fast path's (simulator.fast_loop)
        self.flat_rows: list[float] = []
        #: one row per stopped worker (WORKER_FIELDS' order); ``workers`` holds them as columns after the run
        self.worker_rows: list[tuple] = []
        self.workers: dict[str, list] = {c: [] for c in WORKER_FIELDS}
        #: each stopped worker's tasks in the order it ran them (parallel to ``workers``' rows)
        self.ran_by: list[Any] = []
        #: a live protocol's downstream step (a closure over this run: dropped when the run ends, so the
        #: finished run is freed by reference counting alone)
        self.live_downstream = None if self.live is None else live_downstream(self)
        self.loop_constants = loop_constants(self)
        #: transfers overlapping executions (pre-load, delayed I/O: simulator.overlap_loop), else None
        self.overlap = overlap_for(self)
        self.worker_loop = worker_loop if self.overlap is None else overlap_loop
        #: the default platform's specialised loops (simulator.fast_loop), when they apply and are not turned off
        self.fast = fast and fast_loop.applies(self) and self.plain_transfers
        #: the fast loop's build that runs it: its compiled twin where the install has a current one and
        #: ``compiled_loop`` allows it, else the Python module - the same results (simulator.compiled)
        self.fast_module = (compiled.fast_loop() if compiled_loop else fast_loop) if self.fast else None
        if self.fast:
            self.worker_loop = self.fast_module.fast_steps(self)

    def _decisions(self, model: CompiledModel, draws: Draws | None) -> None:
        """The per-task decision lists the worker loop reads, and the execution seconds they imply."""
        self.exec_s = (draws.exec_s if draws is not None else model.exec_deterministic()).tolist()
        self.exec_ratio = None if draws is None or draws.exec_ratio is None else draws.exec_ratio.tolist()
        tables = model.tables
        #: the protocol asked task by task (a dynamic one), or None when its compiled tables are read
        self.live = model.protocol if tables is None else None
        self.tables = tables
        if tables is not None:
            self.fetch, self.fetch_sized, self.store = tables.fetch, tables.fetch_sized, tables.store
            self.out_bytes, self.downstream, self.exec_profile = tables.out_bytes, tables.downstream, tables.profile
            for i, used in model.other_profile:   # an overridden handle_execution: another profile than planned
                self.exec_s[i] = model.exec_on(i, used, None if self.exec_ratio is None else self.exec_ratio[i])
        else:
            n = model.n
            self.fetch, self.fetch_sized = [None] * n, [None] * n
            self.store, self.out_bytes, self.exec_profile = [False] * n, [0.0] * n, [None] * n
            self.downstream = None
        #: the cores each task's execution keeps busy at most on a shared host (None: unshared), and the
        #: threaded tasks' times under the executor's thread rule (simulator.threads)
        self.parallelism: list[float] | None = None
        apply_thread_rule(self)

    # ------------------------------------------------------------------ driving
    def run(self) -> RunResult:
        start = self.platform.workflow_start_s
        initial = self.tables.initial if self.tables is not None else self.live.initial_invocations()
        for inv in initial:
            i = self.model.index[inv.task]
            self.ready_at[i] = start
            self.release(i, inv.worker, inv.start, start, None)
        self.start_warm_workers(start)
        with paused_gc():
            if self.fast:
                self.fast_module.run(self)
            else:
                run_until_idle(self.env, self.link if self.down_link is self.link
                               else DuplexLink(self.link, self.down_link))
        # (closures over this run: dropped so that the finished run is freed by reference counting alone)
        overlap, self.live_downstream, self.loop_constants, self.overlap = self.overlap, None, None, None
        self.worker_loop = None
        if self.held.value > self.makespan:
            self.makespan = self.held.value
        m = self.model
        if self.completed < m.n:
            unfinished = [m.ids[i] for i in range(m.n) if self.ready_at[i] != self.ready_at[i]
                          or self.arrival[i] is None] or ["?"]
            raise PlanError(f"the simulation stalled: {len(unfinished)} task(s) never ran, e.g. {unfinished[0]!r}",
                            "check the plan's worker sequences and the protocol's decisions")
        if self.worker_rows:
            self.workers = dict(zip(WORKER_FIELDS, map(list, zip(*self.worker_rows))))
        W = self.workers
        cost = 0.0
        price = m.price
        for prof, a, b in zip(W["profile"], W["start_s"], W["stop_s"]):
            cost += (b - a) * price[prof]
        tasks = task_columns(self, overlap) if self.record else {}
        nodes = {} if self.nodes is None else {w: self.nodes.nodes[k].name for w, k in self.nodes.worker_node.items()}
        return RunResult(self.makespan, cost, tasks, W, nodes)

    def start_warm_workers(self, start: float) -> None:
        """Start the plan's pre-warmed workers (the protocol's ``warm_starts``) at their times, with no task:
        each waits for its first task's notification, its start-up already done.

        On a shared host (where the launcher serves start requests one at a time) a warm
        start is a start message like a task's (the executor's client pushes it to the
        launch queue), so it reaches the launcher ``invoke_s`` after its time, behind the
        starts released at the same instant: the roots' workers, which the client submits
        first, are not queued behind the run's warm starts (issue 17).  The worker's start
        (billed) is still its time."""
        warm = self.tables.warm_starts if self.tables is not None else None
        invoke = self.platform.invoke_s if self.cpu is not None else 0.0
        for w, at in (warm or {}).items():
            wake(self.env, _WarmStart(self, w, start + at), None, start + at + invoke - self.env._now)

    # ------------------------------------------------------------------ messages
    def release(self, i: int, worker: str, start: bool, t_ready: float, sender: str | None) -> None:
        """Task ``i`` became ready at ``t_ready``: per-level delay, serial dispatch, then the message."""
        platform = self.platform
        t = t_ready + platform.level_delay_s
        if self.dispatcher.active:
            t = self.dispatcher.serve(t, worker)
        if worker == sender:
            self.arrival[i] = t        # a continuation: the worker already queued it
            return
        t = t + platform.invoke_s
        delay = t - self.env._now
        if delay > 0.0 and start:
            wake(self.env, _Message(self, i, worker, t), None, delay)
        else:
            self.deliver(i, worker, start, t)

    def deliver(self, i: int, worker: str, start: bool, t: float) -> None:
        """The message reaches ``worker`` at ``t``.

        A start runs at ``t`` (the keep-alive pool must be looked at then).  A
        notification is recorded at once with its arrival time ``t``: a busy worker
        begins the task at ``max(t, free)`` when it gets to it (stepping to that time
        only before using a shared resource), and a worker waiting for this very task
        is woken at ``t`` - one event either way.
        """
        protocol = self.live
        if protocol is not None:
            state = self.states.get(worker)
            if state is None:
                state = self.states[worker] = protocol.new_state(worker)
            protocol.notified(state, self.model.ids[i])
        self.arrival[i] = t
        if start:
            spawn(self.env, self.worker_loop, self, worker, t)
            return
        waiting = self.waiting.get(worker)
        if waiting is not None and waiting[0] == i:
            del self.waiting[worker]
            now = self.env._now
            wake(self.env, waiting[1], None, t - now if t > now else 0.0)


class _Message:
    """A start message in flight to ``worker``: delivered (:meth:`Run.deliver`) when :func:`loop.run` resumes it."""

    __slots__ = ("run", "task", "worker", "at", "value")

    def __init__(self, run: Run, task: int, worker: str, at: float) -> None:
        self.run, self.task, self.worker, self.at = run, task, worker, at

    def resume(self) -> None:
        self.run.deliver(self.task, self.worker, True, self.at)


class _WarmStart:
    """A pre-warmed worker's start at ``at``: its loop is spawned then (:meth:`Run.start_warm_workers`)."""

    __slots__ = ("run", "worker", "at", "value")

    def __init__(self, run: Run, worker: str, at: float) -> None:
        self.run, self.worker, self.at = run, worker, at

    def resume(self) -> None:
        spawn(self.run.env, self.run.worker_loop, self.run, self.worker, self.at)
