"""What a re-run worker needs to know about its dead predecessor's work, read from the server.

A logical worker whose process died (SIGKILL, out of memory, a timeout) is
started again (a new *generation*).  The new process walks the same path as the
dead one - its plan's sequence, or a dynamic worker's continuations - and for
each task first asks whether it is already *done*: committed by the atomic
completion script, which numbers completions in the run's ``done`` hash.

* A done task is not run again for its effects: its output is fetched when it was
  stored, recomputed only when a task of this worker needs it and it was not; the
  invocations of its completion are sent again (a notification twice is harmless,
  a start twice is refused by the claim script), so a death between a completion
  and its invocations loses nothing.  Counters are never touched again.
* A task that is not done runs as usual.  Notifications the dead process had
  consumed are lost, so a task is also ready when all its parents are done.

Which children a done task made ready is rebuilt from the completion numbers: a
child with every parent done was made ready by the parent that completed last.
"""

from __future__ import annotations

from typing import Iterable

from executor.wire import Wire
from planning.protocol import WorkerProtocol

__all__ = ["done_numbers", "made_ready", "all_parents_done"]


def done_numbers(wire: Wire, done_key: str, tasks: Iterable[str]) -> dict[str, int | None]:
    """Completion number of each task (None: not done), in one round trip."""
    tasks = list(dict.fromkeys(tasks))
    if not tasks:
        return {}
    (values,) = wire.call([("HMGET", done_key, *tasks)])
    return {t: (int(v) if v is not None else None) for t, v in zip(tasks, values)}


def made_ready(protocol: WorkerProtocol, task_id: str, numbers: dict[str, int | None]) -> list[str]:
    """Children of the done ``task_id`` that its completion made ready (``numbers`` covers their parents)."""
    ready = []
    mine = numbers[task_id]
    for child in protocol.children(task_id):
        parents = protocol.parents(child)
        seqs = [numbers.get(p) for p in parents]
        if all(s is not None for s in seqs) and max(seqs) == mine:
            ready.append(child)
    return ready


def all_parents_done(protocol: WorkerProtocol, task_id: str, numbers: dict[str, int | None]) -> bool:
    return all(numbers.get(p) is not None for p in protocol.parents(task_id))
