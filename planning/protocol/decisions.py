"""What a worker decides at each stage of a task: the decision records every engine reads.

These records are the protocol's vocabulary (:mod:`planning.protocol.base` returns
them from its hooks); :class:`WorkerState` is a logical worker's progress as the
engine that runs it keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


