"""One run of a plan on the executor: submission, waiting, recovery from dead workers, results, cleanup.

* :mod:`executor.run.lifecycle` - the :class:`Run`: the wait on the run's events, the watchdog, aborting;
* :mod:`executor.run.submission` - preparing the payloads and submitting in one round trip;
* :mod:`executor.run.budgets` - each task's timeout and a worker's thread share, from the plan;
* :mod:`executor.run.restarts` - dead workers started again as their next generation;
* :mod:`executor.run.failures` - the message (and fix) of a failed run;
* :mod:`executor.run.collection` - sink values, metrics, the real Trace and the run's meta;
* :mod:`executor.run.teardown` - cancelling a run's processes and deleting its keys;
* :mod:`executor.run.context` - what every phase reads (:class:`RunContext`).
"""

from __future__ import annotations

from executor.run.budgets import task_timeouts, thread_share
from executor.run.lifecycle import Run

__all__ = ["Run", "thread_share", "task_timeouts"]
