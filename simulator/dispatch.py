"""The workflow system's dispatch of released tasks: one serial dispatcher, then one per machine.

A task released by its parents passes, in order, through

* the workflow system's **one serial dispatcher** (``Platform.dispatch_s`` per task,
  first come first served: Pegasus' DAGMan submitting one job at a time; plus
  ``background_dispatch_s`` per task for each of the ``background_runs`` other runs it
  serves at the same time), then
* its **machine's serial starter** (``Platform.machine_dispatch_s`` per task, first come
  first served per machine: a batch system's per-node daemon, or a Makeflow/Work Queue
  worker, launching the jobs of its node one after another).

Both overlap with execution: a dispatcher busy with the next tasks does not delay the
ones already running, so a long task hides the dispatch of the tasks behind it (WfInstances'
blast runs: about 35 s per task and machine when tasks take seconds, hidden when they take
half an hour).  A machine is a worker's profile: the ``recorded`` planner gives every
recorded machine its own profile, so in a replay the machines are the recorded ones; a
worker without a compiled profile (a dynamic protocol) counts by its name up to ``#``.

With ``machine_dispatch_s = 0`` the departure times are exactly those of the one serial
dispatcher alone (bit for bit), so every earlier result stands.
"""

from __future__ import annotations

from typing import Any, Mapping

from simulator.platform import Platform
from simulator.storage import FifoServer


class Dispatcher:
    """The dispatch of released tasks on one platform: :meth:`serve` gives when a task leaves it."""

    __slots__ = ("dispatch_s", "machine_dispatch_s", "active", "_serial", "_machines", "_machine_of")

    def __init__(self, platform: Platform, worker_profile: Mapping[str, str] | None = None) -> None:
        # the workflow system's other runs slow its one dispatcher (Platform.background_runs); 0 leaves dispatch_s
        self.dispatch_s = platform.dispatch_s + platform.background_runs * platform.background_dispatch_s
        self.machine_dispatch_s = platform.machine_dispatch_s
        #: whether releases pass through any dispatcher (else :meth:`serve` need not be called)
        self.active = self.dispatch_s > 0 or self.machine_dispatch_s > 0
        self._serial = FifoServer()
        self._machines: dict[str, FifoServer] = {}
        self._machine_of = worker_profile if worker_profile is not None else {}

    def machine(self, worker: str) -> str:
        """The machine whose starter runs ``worker``'s tasks: its profile, else its name up to ``#``."""
        found = self._machine_of.get(worker)
        return found if found is not None else worker.split("#", 1)[0]

    def serve(self, arrival: float, worker: str) -> float:
        """When a task released at ``arrival`` for ``worker`` leaves both dispatchers (releases in time order)."""
        t = arrival
        if self.dispatch_s > 0:
            t = self._serial.serve(t, self.dispatch_s)
        if self.machine_dispatch_s > 0:
            key = self.machine(worker)
            starter = self._machines.get(key)
            if starter is None:
                starter = self._machines[key] = FifoServer()
            t = starter.serve(t, self.machine_dispatch_s)
        return t


def dispatcher_for(platform: Platform, tables: Any) -> Dispatcher:
    """The run's dispatcher; machines from the compiled tables' worker profiles (read only when they matter)."""
    per_machine = platform.machine_dispatch_s > 0 and tables is not None
    return Dispatcher(platform, tables.worker_profile if per_machine else None)
