"""The launcher: turns start invocations into worker processes, cold or warm.

A launcher serves the launch queues of the runs it is told about
(:mod:`executor.launcher.queues`: the :class:`Launcher`, its main loop and
control messages) and hands each start to a worker process
(:mod:`executor.launcher.pool`):

* **warm**: an idle process of the same profile (and limits) that finished its
  last logical worker less than ``keep_alive_s`` ago - it is waiting on its own
  inbox list and starts at once;
* **cold**: a new process forked from the launcher, moved into fresh cgroups for
  its profile's CPU quota and memory limit before it runs anything, with
  BLAS/OpenMP thread pools sized to the quota (:mod:`executor.launcher.warm_process`).

The launcher is the parent of its workers: it reports deaths that cost work,
kills processes past their timeout or with a stopped heartbeat, and renews the
leases of the live ones.
"""

from __future__ import annotations

from executor.launcher.queues import Launcher, new_launcher_id, run_launcher

__all__ = ["Launcher", "run_launcher", "new_launcher_id"]
