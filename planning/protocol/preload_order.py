"""When a worker begins each pre-load: the one rule every engine follows (schedule, simulator, executor).

A worker that pre-loads (:meth:`planning.protocol.WorkerProtocol.preloads`) runs one
background fetch at a time, for the next task of its sequence that is pre-loaded
(:meth:`~planning.protocol.WorkerProtocol.preloads_inputs`, and fetches something).
It begins that fetch when it starts executing the task it is *anchored* to: the
pre-loaded task before it in the sequence (whose own pre-load the worker has just
taken), or the worker's first task when there is none.  Each input then moves from
``max(that input stored, the anchor's execution start)``.

Why not the task just before (the rule until issue 17's fan-large study): a task
whose inputs come from other workers is often preceded on its worker by tasks that
fetch nothing from them - the gather of a skewed scatter/gather runs after its own
branch's chunks, and the other branches' partials are stored while the first of
those chunks runs.  Waiting for the task just before left most of the time the
partials sat stored unused: fan-large's pre-load hid 0.33 s of its 0.8 s of
downloads.  Anchored at the branch's first chunk, it can hide them all, and the
memory held is still one task's inputs at a time (for longer; measured by
:func:`planning.protocol.optimizations.preload_memory`).
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable, TypeVar

T = TypeVar("T", bound=Hashable)

__all__ = ["preload_anchors"]


def preload_anchors(sequence: Iterable[T], preloaded: Callable[[T], bool]) -> dict[T, T]:
    """For one worker's ``sequence`` (in order): each pre-loaded task -> the task whose execution start begins its
    pre-load (the pre-loaded task before it, else the sequence's first).  The first task is never pre-loaded (the
    worker is not running before it), whatever ``preloaded`` says of it.

    >>> preload_anchors("abcde", lambda t: t in "ce")
    {'c': 'a', 'e': 'c'}
    >>> preload_anchors("abcd", lambda t: t in "bcd")
    {'b': 'a', 'c': 'b', 'd': 'c'}
    """
    anchors: dict[T, T] = {}
    anchor: T | None = None
    for task in sequence:
        if anchor is None:
            anchor = task
        elif preloaded(task):
            anchors[task] = anchor
            anchor = task
    return anchors
