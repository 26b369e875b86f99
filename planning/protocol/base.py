"""The worker protocol: what a worker decides at each stage of a task, written once.

The planner's schedule, the simulator and the executor all interpret these
decisions, so planned, simulated and real runs differ by the world, not by the
logic.  An optimization is a subclass that overrides a hook; it then changes all
three at once.

A task goes through four stages on its worker:

``handle_inputs``
    which inputs are already in this worker's memory (it ran the parent) and which
    must be fetched from storage (all fetches of one task run in parallel); an
    output stays in a worker's memory until the last of its tasks that reads it
    locally has run (:meth:`WorkerProtocol.retention`);
``handle_execution``
    what to run: the task, on a profile (the worker's, by default);
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
A static protocol's decisions therefore depend on the plan only, and
:meth:`WorkerProtocol.compile` turns them into :class:`~planning.protocol.tables.DecisionTables`
once per plan - with array operations for this class's own hooks, by asking the
hooks task by task for a subclass that overrides any of them.  Dynamic plans
decide at run time: :class:`~planning.protocol.dynamic.DynamicProtocol` is asked live.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Collection, Iterable, Mapping

from planning.protocol.decisions import (DownstreamDecision, ExecutionDecision, Fetch, InputDecision, Invocation,
                                         OutputDecision, WorkerState, stored_output_bytes)
from planning.workflow import Workflow

#: The hooks a subclass may override; overriding any of them makes :meth:`WorkerProtocol.compile` ask them.
HOOKS = ("handle_inputs", "handle_execution", "handle_output", "handle_downstream")



class shipped_property(cached_property):
    """A :func:`~functools.cached_property` derived from the compiled tables (or the plan itself) that the workers
    read: the protocol derives it when it is pickled (:meth:`WorkerProtocol.__getstate__`) and ships it.

    Why: a pickled copy does not carry the tables, so a worker asking for such a value
    compiled the whole plan in its own process, on the run's path - ~1 ms of CPU in a
    fresh process, 1.4-70 ms where the other workers' executions held the cores (issue
    17: retention's readers, pre-load's tasks).  The client pickles the run's
    specification before the run's clock starts.
    """


def shipped_names(cls: type) -> list[str]:
    """The :class:`shipped_property` attributes of ``cls`` and its bases."""
    return [name for klass in cls.__mro__ for name, value in vars(klass).items() if isinstance(value, shipped_property)]

class WorkerProtocol:
    """The decisions of every worker of one static plan.  Subclass and override a hook to change every engine.

    ``worker_of``, ``worker_profile`` and ``sequence`` are the plan's assignment
    (:class:`planning.assignment.Assignment`).  ``WorkerProtocol(..., dynamic=True)``
    and :meth:`for_plan` of a dynamic plan give a
    :class:`~planning.protocol.dynamic.DynamicProtocol`.
    """

    #: Whether engines must ask the hooks live (the run decides placement): see DynamicProtocol.
    dynamic = False
    #: The class a dynamic plan's base protocol becomes; set by :mod:`planning.protocol.dynamic` when it is
    #: imported (the package imports it), so this module does not import its own subclass back.
    dynamic_class: "type[WorkerProtocol] | None" = None

    def __new__(cls, *args: Any, dynamic: bool = False, **kwargs: Any) -> "WorkerProtocol":
        if dynamic and not cls.dynamic:
            if cls is WorkerProtocol:
                assert WorkerProtocol.dynamic_class is not None, "planning.protocol.dynamic registers it on import"
                cls = WorkerProtocol.dynamic_class
            else:
                raise TypeError(f"{cls.__name__} is a static protocol: subclass DynamicProtocol for dynamic plans")
        return super().__new__(cls)

    def __init__(self, workflow: Workflow, worker_of: Mapping[str, str], worker_profile: Mapping[str, str],
                 sequence: Mapping[str, list[str]], *, dynamic: bool = False,
                 warm_starts: Mapping[str, float] | None = None) -> None:
        self.workflow = workflow
        self.worker_of = worker_of
        self.worker_profile = worker_profile
        self.sequence = sequence
        self.topology = workflow.topology()
        self.index = self.topology.index
        #: workers started ahead of their first task (the plan's pre-warm): worker -> seconds after the run's start
        self.warm_at: dict[str, float] = dict(warm_starts or {})
        self._profile = next(iter(worker_profile.values()), "")
        self._pred = workflow.graph._pred      # child -> parent -> edge attributes (networkx, read-only here)
        self._tables = None
        self._assignment = None

    def __getstate__(self) -> dict[str, Any]:
        # the executor ships the protocol to every worker process: tables are rebuilt there if asked, but what a
        # subclass derives from them for the workers (shipped_property) is derived here and travels with it
        for name in shipped_names(type(self)):
            getattr(self, name)
        state = dict(self.__dict__)
        state["_tables"] = None
        state["_assignment"] = None
        return state

    @shipped_property
    def _first_of(self) -> dict[str, str]:
        """The first task of each worker that its invocation starts (a pre-warmed worker is only notified).

        Built on first use, not with the protocol: a compiled run reads its tables, and a simulation
        makes a protocol per call (a dictionary over thousands of workers, a few tenths of a ms at 10k
        tasks, issue 18); shipped to the executor's workers like the tables' derivations."""
        return {ts[0]: w for w, ts in self.sequence.items() if ts and w not in self.warm_at}

    @cached_property
    def _parents(self) -> dict[str, list[str]]:
        """What ``workflow.parents`` returns, for every task (built on first use: compiled runs never ask)."""
        ids = self.topology.ids
        return {t: [ids[p] for p in ps] for t, ps in zip(ids, self.topology.parents)}

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        """Children in topological-index order, for every task (built on first use)."""
        ids = self.topology.ids
        return {t: [ids[c] for c in cs] for t, cs in zip(ids, self.topology.children)}

    @classmethod
    def for_plan(cls, workflow: Workflow, plan: Any) -> "WorkerProtocol":
        """The protocol of a :class:`planning.plan.Plan`: its stored assignment, never re-derived."""
        a = plan.assignment
        warm = {"warm_starts": a.warm_starts} if a.warm_starts else {}    # (a subclass may not take the keyword)
        protocol = cls(workflow, a.worker_of, a.worker_profile, a.sequence, dynamic=bool(plan.dynamic), **warm)
        protocol._assignment = a
        return protocol

    # ------------------------------------------------------------------ compiled decisions
    @classmethod
    def overridden_hooks(cls) -> tuple[str, ...]:
        """The hooks this class defines differently from :class:`WorkerProtocol`'s."""
        return tuple(h for h in HOOKS if getattr(cls, h) is not getattr(WorkerProtocol, h))

    def compile(self) -> "Any":
        """Every worker's decisions on this plan, as :class:`~planning.protocol.tables.DecisionTables` (cached).

        This class's own hooks are compiled with array operations over the workflow's
        edges (:func:`~planning.protocol.tables.base_tables`); a subclass overriding any
        hook gets its hooks asked once per task instead (:func:`~planning.protocol.tables.hook_tables`),
        so an override changes every engine without further code.
        """
        if self._tables is None:
            from planning.protocol.tables import base_tables, hook_tables

            if self.overridden_hooks():
                self._tables = hook_tables(self)
            elif type(self) is WorkerProtocol and self._assignment is not None:   # shared by the plan's runs
                self._tables = self._assignment.compiled(self.topology, lambda: base_tables(self))
            else:
                self._tables = base_tables(self)
        return self._tables

    def placement(self) -> Any:
        """The assignment over the topology's positions (:class:`planning.assignment.Placement`)."""
        from planning.assignment import Assignment

        if self._assignment is None:
            self._assignment = Assignment(self.worker_of, self.worker_profile, self.sequence)
        return self._assignment.placement(self.topology)

    def retention(self, worker: str) -> dict[str, int] | None:
        """How many of ``worker``'s tasks read each output from its memory (None: keep every output).

        An engine keeping outputs in memory drops one once that many of its local
        readers have run: the memory rule follows from :meth:`handle_inputs`, asked
        over the worker's own sequence (O(its tasks); compiled tables when already built).
        """
        seq = self.sequence.get(worker, [])
        reads = dict.fromkeys(seq, 0)
        if self._tables is not None:
            ids, index = self.topology.ids, self.index
            for t in seq:
                for parent in self._tables.local[index[t]]:
                    reads[ids[parent]] = reads.get(ids[parent], 0) + 1
            return reads
        ran: set[str] = set()
        if type(self).handle_inputs is WorkerProtocol.handle_inputs:   # its rule without its records: the parents ran
            parents = self._parents                                     # here (O(edges) on a worker's start)
            for t in seq:
                for parent in parents[t]:
                    if parent in ran:
                        reads[parent] = reads.get(parent, 0) + 1
                ran.add(t)
            return reads
        for t in seq:
            for parent in self.handle_inputs(t, worker, ran).local:
                reads[parent] = reads.get(parent, 0) + 1
            ran.add(t)
        return reads

    def warm_starts(self) -> dict[str, float]:
        """Workers the engines start without a task, seconds after the run's start (pre-warm; the plan decides).

        Such a worker's start-up overlaps its parents' work; its first task reaches it
        as a notification.  Empty in the base: each worker is started by its first task.
        """
        return dict(self.warm_at)

    def stored_readers(self, task_id: str) -> tuple[str, ...]:
        """The readers whose completions remove ``task_id``'s stored output: the last of them deletes it.

        Empty - the base rule - keeps a stored output on the server until the run's keys
        are cleaned up.  An optimization that bounds the server's memory (per-task output
        retention) names the tasks that fetch it; engines count a read in each of those
        readers' completions and delete the output at the last one.  Not one of
        :data:`HOOKS`: it changes no timing, so the compiled tables stay the base's.
        """
        return ()

    def removes_leftovers(self) -> bool:
        """Whether the sinks remove every intermediate output left on the server once they are all done.

        False - the base rule - leaves them to the run's key cleanup.  Per-task output
        retention says True: the outputs its reader counts could not remove (one a
        re-run might need, a reader list a retried task left incomplete) go when the
        last sink is done - every task is then done, each being some sink's ancestor.
        """
        return False

    def preloads(self) -> bool:
        """Whether a worker fetches a later task's inputs in the background while it runs the tasks before it.

        False - the base rule - fetches a task's inputs when the worker gets to it.
        Pre-load (:mod:`planning.protocol.optimizations.preload`) says True: each
        download starts once its input is stored and the worker runs the task the
        pre-load is anchored to (:mod:`planning.protocol.preload_order`), and the bytes
        wait in the worker's memory.  Not one of :data:`HOOKS`: it
        changes when, not what, so the compiled tables stay the base's; each engine
        reads it once per run.
        """
        return False

    def preloads_inputs(self, task_id: str) -> bool:
        """Asked of a protocol that :meth:`preloads`: whether ``task_id``'s inputs are pre-loaded (all are here).

        Pre-load says no for a task whose fetched inputs are too small for a background
        fetch to pay (:data:`planning.protocol.optimizations.preload.PRELOAD_MIN_BYTES`):
        such a task fetches them when its worker gets to it, in every engine.
        """
        return True

    def lazy_upload(self, task_id: str, worker: str) -> bool:
        """Whether ``task_id``'s stored output is uploaded in the background, the worker moving on at once.

        False - the base rule - uploads before the worker's next task (its children on
        this worker also wait for the upload).  Delayed I/O
        (:mod:`planning.protocol.optimizations.delayed_io`) says True off the critical
        path: tasks of this worker read the output from memory at the execution's end,
        other workers' tasks when it is stored.  Asked only of stored outputs.
        """
        return False

    def lazy_upload_yields(self, worker: str) -> bool:
        """Whether ``worker``'s lazy uploads yield the CPU to the executions (a niced thread in the executor,
        a light CPU weight in the simulator).  False - the base rule; delayed I/O says True for a worker whose
        every lazy upload has room to be slow in the plan
        (:data:`~planning.protocol.optimizations.delayed_io.YIELD_MIN_SLACK_S`).
        """
        return False

    # ------------------------------------------------------------------ topology helpers
    def parents(self, task_id: str) -> list[str]:
        return self._parents[task_id]

    def children(self, task_id: str) -> list[str]:
        """Children in topological-index order (the order dynamic continuation uses)."""
        return self._children[task_id]

    def profile_of(self, worker: str) -> str:
        """A worker's profile (a dynamic plan's new workers all take the plan's one profile)."""
        return self.worker_profile.get(worker, self._profile)

    def output_bytes(self, task_id: str) -> float:
        """The largest out-edge (a sink's ``output_bytes`` hint)."""
        return stored_output_bytes(self.workflow, task_id)

    # ------------------------------------------------------------------ a worker's progress
    def initial_invocations(self) -> list[Invocation]:
        """What the client sends at submission: each root to its worker."""
        roots = sorted(self.workflow.roots(), key=self.index.__getitem__)
        return [Invocation(self.worker_of[r], r, self._first_of.get(r) == self.worker_of[r]) for r in roots]

    def new_state(self, worker: str) -> WorkerState:
        return WorkerState(worker, self.profile_of(worker))

    def next_task(self, state: WorkerState) -> str | None:
        """The next task of this worker's planned sequence, or None when it is done.

        The engine waits for its notification when it is not in ``state.ready`` yet.
        """
        seq = self.sequence.get(state.worker, [])
        position = len(state.ran)
        return seq[position] if position < len(seq) else None

    def is_last_task(self, state: WorkerState) -> bool:
        """Whether a static worker has run its whole sequence."""
        return len(state.ran) >= len(self.sequence.get(state.worker, []))

    def task_done(self, state: WorkerState, task_id: str) -> None:
        """Book-keeping after a task finished on this worker."""
        state.ran.append(task_id)
        if task_id in state._ready_set:
            state._ready_set.discard(task_id)
            state.ready.remove(task_id)          # usually at the front: tasks run in about arrival order

    def after_downstream(self, state: WorkerState, decision: DownstreamDecision) -> None:
        """Queue the children this worker runs itself."""
        for c in decision.run_here:
            state.mark_ready(c)

    def notified(self, state: WorkerState, task_id: str) -> None:
        """A notification (or the starting invocation) says ``task_id`` is ready for this worker."""
        state.mark_ready(task_id)

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
        """The task runs on its worker's profile."""
        return ExecutionDecision(task_id, self.profile_of(worker))

    def handle_output(self, task_id: str, worker: str) -> OutputDecision:
        """Store when a consumer is planned on another worker, or for a sink (the client fetches it)."""
        children = self._children[task_id]
        nbytes = self.output_bytes(task_id)
        if not children:
            return OutputDecision(True, nbytes)
        return OutputDecision(any(self.worker_of[c] != worker for c in children), nbytes)

    def handle_downstream(self, task_id: str, worker: str, ready_children: Iterable[str]) -> DownstreamDecision:
        """Run the ready children planned here; notify (or start, for its first task) each other's worker."""
        ready = sorted(ready_children, key=self.index.__getitem__)
        here, invocations = [], []
        for c in ready:
            w = self.worker_of[c]
            if w == worker:
                here.append(c)
            else:
                invocations.append(Invocation(w, c, self._first_of.get(c) == w))
        return DownstreamDecision(tuple(here), tuple(invocations))
