"""The worker protocol, written once and read by the planner's schedule, the simulator and the executor.

* :mod:`planning.protocol.decisions` - the decision records (inputs, execution,
  output, downstream) and a worker's run-time state;
* :mod:`planning.protocol.base` - :class:`WorkerProtocol`: the hooks of a static plan
  and :meth:`WorkerProtocol.compile`, which turns them into decision tables once per plan;
* :mod:`planning.protocol.tables` - :class:`DecisionTables` and their two builders
  (array operations for the base hooks, per-task hook calls for a subclass);
* :mod:`planning.protocol.dynamic` - :class:`DynamicProtocol` (WUKONG), asked live.
"""

from planning.protocol.base import HOOKS, WorkerProtocol
from planning.protocol.decisions import (DownstreamDecision, ExecutionDecision, Fetch, InputDecision, Invocation,
                                         OutputDecision, WorkerState, dynamic_worker_id, stored_output_bytes)
from planning.protocol.dynamic import DynamicProtocol
from planning.protocol.tables import DecisionTables

__all__ = ["HOOKS", "WorkerProtocol", "DynamicProtocol", "DecisionTables", "DownstreamDecision", "ExecutionDecision",
           "Fetch", "InputDecision", "Invocation", "OutputDecision", "WorkerState", "dynamic_worker_id",
           "stored_output_bytes"]
