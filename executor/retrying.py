"""Which task failures are worth another attempt.

A task that raises the same exception on every attempt gains nothing from a
retry but time (and a run that fails later); only the user knows which errors
are transient (a flaky service, a busy file system).  So a failure is retried
only when the task raised :class:`TransientError` (or a subclass) or an
exception whose class, or one of its base classes, is named in
``ExecutorSettings.retry_on`` - by bare name (``"ConnectionError"``) or
qualified (``"mylib.errors.Busy"``).
"""

from __future__ import annotations

__all__ = ["TransientError", "is_transient"]


class TransientError(Exception):
    """Raise this (or subclass it) in a task to have the executor retry it (``ExecutorSettings.retries``)."""


def is_transient(exc: BaseException, retry_on: tuple[str, ...]) -> bool:
    if isinstance(exc, TransientError):
        return True
    for cls in type(exc).__mro__:
        if cls.__name__ in retry_on or f"{cls.__module__}.{cls.__qualname__}" in retry_on:
            return True
    return False


def task_traceback(exc: BaseException) -> str:
    """The traceback of an exception a task raised, from the task's own code down (multi-line).

    The executor's frames above the task's function (the worker loop, the call with
    its inputs) say nothing to the user and are left out; the exception's chain is kept.
    """
    import os
    import traceback

    ours = (os.path.dirname(os.path.abspath(__file__)),
            os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "planning", "workflow.py"))
    summary = traceback.TracebackException.from_exception(exc)
    frames = list(summary.stack)
    keep = 0
    while keep < len(frames) - 1 and frames[keep].filename.startswith(ours):
        keep += 1
    summary.stack = traceback.StackSummary.from_list(frames[keep:])
    return "".join(summary.format())
