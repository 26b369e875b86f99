"""What every phase of one run reads: the executor, the run's identity and keys, its protocol and sealer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from executor import keys
from executor.auth import RunSealer
from executor.settings import ExecutorSettings
from planning.protocol import WorkerProtocol
from planning.workflow import Workflow

if TYPE_CHECKING:
    from executor.client import Executor
    from planning.plan import Plan

__all__ = ["RunContext"]


@dataclass(frozen=True)
class RunContext:
    """One run's fixed facts; ``r`` is the executor's client, ``k`` the run's keys."""

    ex: Executor
    workflow: Workflow
    plan: Plan
    run_id: str
    protocol: WorkerProtocol
    sealer: RunSealer
    s: ExecutorSettings
    r: redis.Redis
    k: keys.RunKeys

    @classmethod
    def of(cls, ex: Executor, workflow: Workflow, plan: Plan, run_id: str, protocol: WorkerProtocol,
           sealer: RunSealer, settings: ExecutorSettings | None = None) -> RunContext:
        """The run's context; ``settings`` (default: the executor's) are the ones its workers follow."""
        return cls(ex, workflow, plan, run_id, protocol, sealer, settings or ex.settings, ex.client,
                   keys.RunKeys(run_id))

    @property
    def ttl_ms(self) -> int:
        """Every key of the run expires this long after it was written."""
        return int(self.s.key_ttl_s * 1000)

    def sequence(self, worker: str) -> list[str]:
        """The tasks ``worker`` runs in order (a dynamic worker ``w:TASK``: its first task)."""
        if self.protocol.dynamic:
            return [worker[2:]] if worker.startswith("w:") else []
        return self.protocol.sequence.get(worker, [])
