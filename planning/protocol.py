"""The worker protocol: what a worker decides at each stage of a task, written once.

Both engines interpret these decisions - the simulator in simulated time, the
executor for real - so planned, simulated and real runs differ by the world, not by
the logic.  An optimization is a subclass that overrides a hook; it then changes
both engines at once.

A task goes through four stages on its worker:

``handle_inputs``
    which inputs are already in this worker's memory (it ran the parent) and which
    must be fetched from storage (all fetches of one task run in parallel);
``handle_execution``
    what to run (the task, on the worker's profile);
``handle_output``
    whether to store the output (only when a consumer may run on another worker,
    or the task is a sink, whose result the client fetches) and how many bytes;
``handle_downstream``
    given the children whose dependency counter this completion brought to zero
    (the engine decrements the counters atomically, *after* storing the output),
    which of them this worker runs itself and which workers to invoke.

Static plans (every planner but ``wukong``) fix each task's worker and each
worker's task order: a worker runs its planned sequence in order, waiting for a
task that another worker makes ready; that worker *notifies* it, and the
notification for a worker's first planned task *starts* it (a cold or warm start).

Dynamic plans (``plan.dynamic``, WUKONG) decide at run time: the worker that
completes a task runs the first of the children it made ready (so the worker that
completes a fan-in's last dependency continues it) and starts one new worker for
each other ready child.  New workers are named :func:`dynamic_worker_id` of their
first task, so every engine and the planner name them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Collection, Iterable

from planning.workflow import Workflow


def dynamic_worker_id(first_task: str) -> str:
    """The logical worker a dynamic plan starts for ``first_task``."""
    return f"w:{first_task}"


def stored_output_bytes(workflow: Workflow, task_id: str) -> float:
    """Size of a task's stored output: its largest out-edge, or its ``output_bytes`` hint for a sink.

    One task output is stored once, and each child reads its own edge's bytes of it.
    (Computed for every task at once by :class:`planning.topology.Topology`.)
    """
    topology = workflow.topology()
    return float(topology.out_bytes[topology.index[task_id]])


@dataclass(frozen=True)
class Fetch:
    """One input to download from storage: the parent's stored output, ``nbytes`` of it."""

    parent: str
    nbytes: float


@dataclass(frozen=True)
class InputDecision:
    """Inputs already in this worker's memory and inputs to fetch (in parallel)."""

    local: tuple[str, ...]
    fetch: tuple[Fetch, ...]

    @property
    def fetch_bytes(self) -> float:
        return float(sum(f.nbytes for f in self.fetch))


@dataclass(frozen=True)
class ExecutionDecision:
    """What to run: the task on the worker's profile."""

    task_id: str
    profile: str


@dataclass(frozen=True)
class OutputDecision:
    """Whether the output goes to storage, and its size (the largest out-edge; a sink's hint)."""

    store: bool
    nbytes: float


@dataclass(frozen=True)
class Invocation:
    """A message to a logical worker: ``task`` is ready for it.

    ``start`` is True when the worker is not running yet and this task is its first:
    the engine starts it (cold, or warm from an idle process of the same profile).
    Otherwise the (running or soon running) worker is only told the task is ready.
    """

    worker: str
    task: str
    start: bool


@dataclass(frozen=True)
class DownstreamDecision:
    """Children this worker will run itself, and invocations of other workers."""

    run_here: tuple[str, ...]
    invocations: tuple[Invocation, ...]


@dataclass
class WorkerState:
    """A logical worker's progress, kept by the engine that runs it.

    ``ran`` holds the tasks whose outputs are in this worker's memory; ``ready``
    the tasks made ready for it (locally or by notifications) but not yet run.
    """

    worker: str
    profile: str
    ran: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    _ready_set: set[str] = field(default_factory=set, repr=False)   # O(1) membership for thousands of notifications

    def is_ready(self, task_id: str) -> bool:
        return task_id in self._ready_set

    def mark_ready(self, task_id: str) -> None:
        if task_id not in self._ready_set:
            self._ready_set.add(task_id)
            self.ready.append(task_id)


class WorkerProtocol:
    """The decisions of every worker of one plan.  Subclass and override a hook to change both engines.

    ``worker_of`` and ``sequence`` come from the plan; a dynamic plan's
    ``worker_of`` is the planner's prediction only, and engines decide placement
    through :meth:`handle_downstream` instead.
    """

    def __init__(self, workflow: Workflow, worker_of: dict[str, str], worker_profile: dict[str, str],
                 sequence: dict[str, list[str]], *, dynamic: bool = False) -> None:
        self.workflow = workflow
        self.worker_of = dict(worker_of)
        self.worker_profile = dict(worker_profile)
        self.sequence = {w: list(ts) for w, ts in sequence.items()}
        self.dynamic = dynamic
        self.topology = workflow.topology()
        self.index = self.topology.index
        self._first_of = {ts[0]: w for w, ts in self.sequence.items() if ts}
        self._profile = next(iter(self.worker_profile.values()), "")
        self._pred = workflow.graph._pred      # child -> parent -> edge attributes (networkx, read-only here)

    @cached_property
    def _parents(self) -> dict[str, list[str]]:
        """What ``workflow.parents`` returns, for every task (built on first use: static simulations never ask)."""
        ids = self.topology.ids
        return {t: [ids[p] for p in ps] for t, ps in zip(ids, self.topology.parents)}

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        """Children in topological-index order, for every task (built on first use)."""
        ids = self.topology.ids
        return {t: [ids[c] for c in cs] for t, cs in zip(ids, self.topology.children)}

    @classmethod
    def for_plan(cls, workflow: Workflow, plan) -> "WorkerProtocol":
        """The protocol of a :class:`planning.plan.Plan`."""
        return cls(workflow, plan.worker_of, plan.worker_profile, plan.sequence(), dynamic=plan.dynamic)

    # ------------------------------------------------------------------ topology helpers
    def parents(self, task_id: str) -> list[str]:
        return self._parents[task_id]

    def children(self, task_id: str) -> list[str]:
        """Children in topological-index order (the order dynamic continuation uses)."""
        return self._children[task_id]

    def profile_of(self, worker: str) -> str:
        """A worker's profile; a dynamic plan's new workers all take the plan's one profile."""
        return self.worker_profile.get(worker, self._profile)

    def output_bytes(self, task_id: str) -> float:
        """The largest out-edge (a sink's ``output_bytes`` hint)."""
        return stored_output_bytes(self.workflow, task_id)

    # ------------------------------------------------------------------ starting a run
    def initial_invocations(self) -> list[Invocation]:
        """What the client sends at submission: each root to its worker."""
        roots = sorted(self.workflow.roots(), key=self.index.__getitem__)
        if self.dynamic:
            return [Invocation(dynamic_worker_id(r), r, True) for r in roots]
        return [Invocation(self.worker_of[r], r, self._first_of.get(r) == self.worker_of[r]) for r in roots]

    def new_state(self, worker: str) -> WorkerState:
        return WorkerState(worker, self.profile_of(worker))

    def next_task(self, state: WorkerState) -> str | None:
        """The task this worker runs next, or None when it is done.

        Static: the next task of its planned sequence (the engine waits for its
        notification when it is not in ``state.ready`` yet).  Dynamic: the task it
        was started with or continued to; None when it has nothing left.
        """
        if self.dynamic:
            return state.ready[0] if state.ready else None
        seq = self.sequence.get(state.worker, [])
        position = len(state.ran)
        return seq[position] if position < len(seq) else None

    def is_last_task(self, state: WorkerState) -> bool:
        """Whether a static worker has run its whole sequence."""
        return not self.dynamic and len(state.ran) >= len(self.sequence.get(state.worker, []))

    def task_done(self, state: WorkerState, task_id: str) -> None:
        """Book-keeping after a task finished on this worker."""
        state.ran.append(task_id)
        if task_id in state._ready_set:
            state._ready_set.discard(task_id)
            state.ready.remove(task_id)          # usually at the front: tasks run in about arrival order

    # ------------------------------------------------------------------ the four hooks
    def handle_inputs(self, task_id: str, worker: str, ran_here: Collection[str]) -> InputDecision:
        """Parents this worker ran are in memory; every other parent's output is fetched."""
        local, fetch = [], []
        in_edges = self._pred[task_id]
        for p in self._parents[task_id]:
            if p in ran_here:
                local.append(p)
            else:
                fetch.append(Fetch(p, float(in_edges[p]["bytes"])))
        return InputDecision(tuple(local), tuple(fetch))

    def handle_execution(self, task_id: str, worker: str) -> ExecutionDecision:
        return ExecutionDecision(task_id, self.profile_of(worker))

    def handle_output(self, task_id: str, worker: str) -> OutputDecision:
        """Store when a consumer may run elsewhere, or for a sink (the client fetches it).

        Static: a consumer is elsewhere when its planned worker differs.  Dynamic:
        only a lone child whose only parent is this task surely runs here.
        """
        children = self._children[task_id]
        nbytes = self.output_bytes(task_id)
        if not children:
            return OutputDecision(True, nbytes)
        if self.dynamic:
            sure_here = len(children) == 1 and len(self._parents[children[0]]) == 1
            return OutputDecision(not sure_here, nbytes)
        return OutputDecision(any(self.worker_of[c] != worker for c in children), nbytes)

    def handle_downstream(self, task_id: str, worker: str, ready_children: Iterable[str]) -> DownstreamDecision:
        """Run here or invoke elsewhere the children this completion made ready."""
        ready = sorted(ready_children, key=self.index.__getitem__)
        if self.dynamic:
            if not ready:
                return DownstreamDecision((), ())
            first, rest = ready[0], ready[1:]
            return DownstreamDecision((first,), tuple(Invocation(dynamic_worker_id(c), c, True) for c in rest))
        here, invocations = [], []
        for c in ready:
            w = self.worker_of[c]
            if w == worker:
                here.append(c)
            else:
                invocations.append(Invocation(w, c, self._first_of.get(c) == w))
        return DownstreamDecision(tuple(here), tuple(invocations))

    def after_downstream(self, state: WorkerState, decision: DownstreamDecision) -> None:
        """Queue the children this worker runs itself."""
        for c in decision.run_here:
            state.mark_ready(c)

    def notified(self, state: WorkerState, task_id: str) -> None:
        """A notification (or the starting invocation) says ``task_id`` is ready for this worker."""
        state.mark_ready(task_id)
