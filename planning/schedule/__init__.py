"""The analytical schedule: when each task would run under a given assignment.

Every planner times its assignment with this module, so planned times follow the
same worker protocol the simulator and executor interpret:

* a worker runs its tasks one at a time, strictly in its planned order;
* a task is *ready* when every parent is done (plus one coordination round trip
  per counter update); it reaches its worker after an invocation latency when the
  parent that made it ready ran elsewhere (or, for roots, was the client);
* a worker's first task pays the start-up of its profile (a cold start);
* inputs produced on other workers are downloaded in parallel (the phase lasts as
  long as the largest download); inputs produced locally are free;
* an output is uploaded when :meth:`WorkerProtocol.handle_output
  <planning.protocol.WorkerProtocol.handle_output>` says so.  Without a protocol
  the static rule applies: only when a consumer runs on another worker, or it is
  a sink (the client fetches sinks' results); the upload size is the task's
  largest out-edge (its ``output_bytes`` hint for sinks);
* the makespan runs from submission to the client holding the last sink's result.

With zero overheads and free transfers this is the classic list-schedule
recurrence ``start = max(parents' finish, worker free)``.

Two layers, one recurrence.  :class:`ScheduleEvaluator` precomputes a workflow's
topology and every transfer time once (O(n + e), transfers vectorised when the
caller can), :meth:`ScheduleEvaluator.layout` fixes an assignment's worker
numbering, order and uploads (O(n + e)), and :meth:`ScheduleEvaluator.run` times
one choice of profiles with plain lists (O(n + e), no pandas) - what planners
that try hundreds of profile changes need.  :class:`Retimer` goes further for
one-change-at-a-time searches: it re-times only the tasks a change reaches, with
the same values.  :mod:`planning.schedule.slack` runs the recurrence backwards
(the latest each task may be done within a limit) so a search can check one
worker's move in O(its tasks) before re-timing anything.  :func:`evaluate_schedule` is the same run wrapped in
DataFrames for the final plan.

A cluster's nodes and the one rule that places a starting worker on one of them - the
simulator's, the Ray launcher's, and a plan's (:func:`planning.schedule.nodes.plan_nodes`
over its planned starts and stops) - are :mod:`planning.schedule.nodes`.  The planned
times themselves charge no sharing of cores (on one host or a node), as before: the
simulator does.
"""

from planning.schedule.evaluator import ScheduleEvaluator, evaluate_schedule
from planning.schedule.retimer import Retimer
from planning.schedule.timing import (TASK_COLUMNS, Layout, ScheduleResult, ScheduleTimes, TransferFn, TransferManyFn,
                                      free_transfer, last_parent, time_task)

__all__ = ["ScheduleEvaluator", "evaluate_schedule", "Retimer", "TASK_COLUMNS", "Layout", "ScheduleResult",
           "ScheduleTimes", "TransferFn", "TransferManyFn", "free_transfer", "last_parent", "time_task"]
