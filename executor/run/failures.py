"""Why a run failed, in one message with its fix: a task's error, or a worker that kept dying."""

from __future__ import annotations

from typing import Any

from executor.messages import decode_error
from executor.run.context import RunContext

__all__ = ["death_failure", "read_task_error", "task_failure"]


def read_task_error(ctx: RunContext) -> dict[str, Any]:
    """The run's final error as its worker stored it (task, worker, traceback, attempts, flags)."""
    data = ctx.r.get(ctx.k.error)
    return decode_error(ctx.sealer, data) if data else {"task": "?", "worker": "?",
                                                         "traceback": "(no traceback stored)", "attempts": 0}


def task_failure(info: dict[str, Any]) -> tuple[str, str]:
    """(what happened, the fix) for a task that failed for good."""
    if info.get("internal"):
        return (f"worker {info['worker']!r} hit an executor error while starting task {info['task']!r}:\n"
                f"{info['traceback'].rstrip()}", "report this as an executor bug, with the traceback")
    if info.get("unpicklable"):
        return (info["traceback"], "return a value pickle or cloudpickle can serialize (no open files, "
                                   "sockets, locks or generators)")
    retried = "" if info.get("transient", True) else " (not retried: the error is not marked transient)"
    return (f"task {info['task']!r} failed on worker {info['worker']!r} after {info['attempts']} "
            f"attempt(s){retried}:\n{info['traceback'].rstrip()}",
            "fix the task's code or inputs (the traceback above is from the worker); if the error is "
            "transient, raise executor.TransientError or name its class in ExecutorSettings.retry_on")


def death_failure(worker: str, tasks: list[str], task: str, kills: int, max_task_kills: int,
                  how: str) -> tuple[str, str]:
    """(what happened, the fix) for a logical worker that died once too often (``task``: what killed it, or "")."""
    what = f" (planned tasks: {', '.join(tasks[:5])}{'...' if len(tasks) > 5 else ''})" if tasks else ""
    head = (f"task {task!r} killed its worker {kills} time(s), more than max_task_kills={max_task_kills}; "
            if task else "")
    return (f"{head}logical worker {worker!r}{what} died: {how}; the run was stopped",
            "if it was killed for memory, give its tasks a profile with more memory; if it ran past its "
            "timeout, raise ExecutorSettings.task_timeout_s (or task_timeout_factor); otherwise find what "
            "kills it")
