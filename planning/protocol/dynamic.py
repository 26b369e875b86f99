"""The dynamic (WUKONG) protocol: placement decided at run time, so every engine asks it live.

The worker that completes a task runs the first of the children it made ready (so
the worker that completes a fan-in's last dependency continues it) and starts one
new worker for each other ready child.  New workers are named
:func:`~planning.protocol.decisions.dynamic_worker_id` of their first task, so every
engine and the planner name them the same way.  Its decisions depend on the run
(who finished last), so it compiles to no tables (:meth:`DynamicProtocol.compile`
is None) and engines call its hooks per task.
"""

from __future__ import annotations

from typing import Any, Iterable

from planning.protocol.base import WorkerProtocol
from planning.protocol.decisions import DownstreamDecision, Invocation, OutputDecision, WorkerState, dynamic_worker_id


class DynamicProtocol(WorkerProtocol):
    """Run-time placement (``plan.dynamic``): the plan's ``worker_of`` is the planner's prediction only."""

    dynamic = True

    def compile(self) -> Any:
        """None: a dynamic protocol's decisions depend on the run, so engines ask its hooks live."""
        return None

    def retention(self, worker: str) -> None:
        """None: a dynamic worker may yet continue any child (the last parent to finish decides): keep everything."""
        return None

    def initial_invocations(self) -> list[Invocation]:
        """Each root starts a worker of its own."""
        roots = sorted(self.workflow.roots(), key=self.index.__getitem__)
        return [Invocation(dynamic_worker_id(r), r, True) for r in roots]

    def next_task(self, state: WorkerState) -> str | None:
        """The task it was started with or continued to; None when it has nothing left."""
        return state.ready[0] if state.ready else None

    def is_last_task(self, state: WorkerState) -> bool:
        """A dynamic worker never knows in advance that it has run its last task."""
        return False

    def handle_output(self, task_id: str, worker: str) -> OutputDecision:
        """Keep only when a lone child whose only parent is this task surely runs here; store otherwise."""
        children = self._children[task_id]
        nbytes = self.output_bytes(task_id)
        if not children:
            return OutputDecision(True, nbytes)
        sure_here = len(children) == 1 and len(self._parents[children[0]]) == 1
        return OutputDecision(not sure_here, nbytes)

    def handle_downstream(self, task_id: str, worker: str, ready_children: Iterable[str]) -> DownstreamDecision:
        """Continue the first ready child (topological order) here; start a new worker for each other one."""
        ready = sorted(ready_children, key=self.index.__getitem__)
        if not ready:
            return DownstreamDecision((), ())
        first, rest = ready[0], ready[1:]
        return DownstreamDecision((first,), tuple(Invocation(dynamic_worker_id(c), c, True) for c in rest))


WorkerProtocol.dynamic_class = DynamicProtocol
