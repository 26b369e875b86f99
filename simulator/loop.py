"""The simulator's event loop: SimPy's environment, with logical workers resumed straight from its queue.

SimPy keeps the clock and the event queue (``env._now``, ``env._queue``: entries
``(time, priority, id, item)`` in time order, ties in scheduling order).  On the
simulator's hot path an entry's item is not a SimPy event but a
:class:`Coroutine` - the driver of one logical worker - or another small object
with a ``value`` attribute and a ``resume()`` method (a message in flight), which
:func:`run` resumes directly.  Building an ``Event`` or ``Timeout`` object,
scheduling it through ``env.schedule`` and dispatching its callback list cost
about a tenth of a run (measured on the 10k- and 100k-task benchmarks); a
wake-up entry costs one heap push.  Entries are pushed with SimPy's own
arithmetic (``now + delay``), priority and id counter, so they are ordered
exactly as SimPy would order the equivalent timeouts, and results are the same
bit for bit.  SimPy events in the queue are processed by ``env.step()`` as usual.

A worker is a generator.  What it yields says when it resumes:

* a delay (``float``, >= 0): after that many simulated seconds, like ``yield env.timeout(delay)``;
* ``None``: when whoever it registered its :class:`Coroutine` with calls :func:`wake`
  (the shared link when its transfers complete, a message that reaches it);
* a SimPy event: when the event fires, with the event's value.

The value the generator receives is the :attr:`Coroutine.value` set by
:func:`wake` (``None`` after a delay).
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any, Callable, Iterator

import simpy
from simpy.events import NORMAL, Event

if TYPE_CHECKING:   # (storage imports this module)
    from simulator.storage import SharedLink


class Coroutine:
    """Drives one generator of a simulation: resumes it with :attr:`value` each time it is woken."""

    __slots__ = ("send", "value", "_env", "_queue", "_ids", "upload")

    def __init__(self, env: simpy.Environment) -> None:
        self.value: Any = None
        #: the worker loop's upload starter (simulator.worker_loop.UploadStart), made on its first use
        self.upload: Any = None
        self._env, self._queue, self._ids = env, env._queue, env._eid

    def resume(self) -> None:
        """Run the generator to its next yield and arrange the wake-up it asks for."""
        try:
            wait = self.send(self.value)
        except StopIteration:
            self.finished()
            return
        if wait is None:      # it registered this driver with whoever will wake it
            return
        cls = wait.__class__
        if cls is float or cls is int:
            if wait < 0.0:    # (SimPy's Timeout refuses it too: the clock would run backwards)
                raise ValueError(f"a simulated worker asked to resume {wait!r} s in the past")
            self.value = None
            heappush(self._queue, (self._env._now + wait, NORMAL, next(self._ids), self))
        else:
            wait.callbacks.append(self._fired)

    def finished(self) -> None:
        """Drop the generator and the upload starter (:class:`simulator.worker_loop.UploadStart` refers back
        to this driver): left as a cycle per worker, thousands per run would wait for the cyclic collector
        (a collection of tens of milliseconds after every 10k-task run) instead of being freed now."""
        self.send = self.upload = None

    def _fired(self, event: simpy.Event) -> None:
        self.value = event._value
        self.resume()


def spawn(env: simpy.Environment, worker: Callable[..., Iterator[Any]], *args: Any) -> Coroutine:
    """Start ``worker(*args, me)`` now (``me`` is its :class:`Coroutine`, to register as a waiter)."""
    me = Coroutine(env)
    me.send = worker(*args, me).send
    me.resume()
    return me


def wake(env: simpy.Environment, waiter: Any, value: Any, delay: float) -> None:
    """Set ``waiter.value`` and call ``waiter.resume()`` after ``delay`` (>= 0) simulated seconds."""
    if delay < 0.0:
        raise ValueError(f"a wake-up {delay!r} s in the past")
    waiter.value = value
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), waiter))


def run(env: simpy.Environment, link: SharedLink | None = None) -> None:
    """Process the queue until nothing is left; wake ``link`` at its ``due`` time (before queue entries at that time).

    SimPy's clock only moves by queue entries; the link computes at ``due`` and
    schedules what it wakes relative to the clock's current time.  A
    :class:`Coroutine`'s :meth:`~Coroutine.resume` is inlined here (the hot path:
    one method call less per wake-up), with the same arithmetic and order.
    """
    queue, step, inf, ids = env._queue, env.step, math.inf, env._eid
    while True:
        if queue:
            entry = queue[0]
            if link is not None and link.due <= entry[0]:
                if link.due == inf:
                    return
                link.wake()
                continue
            item = entry[3]
            if item.__class__ is Coroutine:
                env._now = heappop(queue)[0]
                try:
                    wait = item.send(item.value)
                except StopIteration:
                    item.send = item.upload = None     # (Coroutine.finished, inlined)
                    continue
                if wait is None:      # it registered this driver with whoever will wake it
                    continue
                cls = wait.__class__
                if cls is float or cls is int:
                    if wait < 0.0:
                        raise ValueError(f"a simulated worker asked to resume {wait!r} s in the past")
                    item.value = None
                    heappush(queue, (env._now + wait, NORMAL, next(ids), item))
                else:
                    wait.callbacks.append(item._fired)
            elif not isinstance(item, Event):
                env._now = heappop(queue)[0]
                item.resume()
            else:
                step()
        elif link is not None and link.due != inf:
            link.wake()
        else:
            return
