"""The real executor: runs a Plan on real, limited worker processes coordinated through Redis.

Public API::

    from executor import execute, Executor, ExecutorSettings, ExecutionResult
    result = execute(workflow, plan)                  # embedded server, one run
    with Executor(redis_url=None, settings=ExecutorSettings(scale=0.1)) as ex:
        result = ex.run(workflow, plan)               # warm processes survive between runs

Names are imported lazily so that ``import executor.limits`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["execute", "Executor", "ExecutorSettings", "ExecutionResult", "TransientError"]


def __getattr__(name: str) -> Any:
    if name in ("execute", "Executor", "ExecutionResult"):
        from executor import client

        return getattr(client, name)
    if name == "ExecutorSettings":
        from executor.settings import ExecutorSettings

        return ExecutorSettings
    if name == "TransientError":
        from executor.retrying import TransientError

        return TransientError
    raise AttributeError(f"module 'executor' has no attribute {name!r}")
