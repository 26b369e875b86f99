"""A worker process's state: its connection, identity, heartbeat slot, and caches of run specs and code.

A process serves one logical worker after another (warm starts), possibly of
different runs, so what it loads from the server - a run's spec (the worker
protocol over the code-less workflow), its workers' code, large constants - is
cached per run, authenticated before it is unpickled (:mod:`executor.auth`),
and kept out of the cyclic garbage collector's walks (``gc.freeze``).
"""

from __future__ import annotations

import gc
import os
import socket
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis

from executor import codec, keys
from executor.contention import ContentionProbe
from executor.auth import RunSealer
from executor.heartbeat import Slot
from executor.scripts import Scripts
from executor.settings import ExecutorSettings
from executor.wire import Wire
from planning.gcpause import paused_gc
from planning.protocol import WorkerProtocol

__all__ = ["RunSpec", "ProcessContext", "FROZEN_SLACK_OBJECTS"]


@dataclass
class RunSpec:
    """What every worker of a run shares, stored once under ``RunKeys.protocol``."""

    protocol: WorkerProtocol
    settings: ExecutorSettings
    coded: frozenset[str]
    t0: float
    profiles: dict[str, tuple[float, float, int]] = field(default_factory=dict)   # cpus, memory_mb, threads
    n_parents: dict[str, int] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)   # task -> seconds (absent: no limit)

    def __post_init__(self) -> None:
        if not self.n_parents:
            self.n_parents = {t: len(self.protocol.parents(t)) for t in self.protocol.index}


def _loads_paused(data: bytes | memoryview) -> Any:
    """Unpickle a run's spec or code with the cyclic garbage collector paused.

    A 10k-task spec is ~100k containers: unpickling them with the collector on
    took 0.26-0.32 s instead of 0.09 s here (each young collection re-walks the
    growing heap), on the critical path of every worker's start.  Unpickling
    creates no garbage, so pausing the collector loses nothing.
    """
    with paused_gc():
        return codec.loads_code(data)


#: Frozen objects beyond the live specs' and the inherited heap's that trigger a full re-collection.
FROZEN_SLACK_OBJECTS = 100_000


class ProcessContext:
    """One worker process: its connection, identity, heartbeat slot, caches of run specs and code."""

    def __init__(self, url: str, launcher_id: str, profile: str, limits: dict[str, Any], secret: bytes,
                 slot: Slot | None = None) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=30.0)
        self.launcher_id = launcher_id
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.holder = f"{launcher_id}:{self.pid}:{self.host}"
        self.profile = profile
        self.limits = limits
        self.slot = slot or Slot()
        self.scripts = Scripts(self.client)
        self.wire = Wire(self.client)
        self._secret = secret
        self._sealers: dict[str, RunSealer] = {}
        self._specs: OrderedDict[str, RunSpec] = OrderedDict()
        self._frozen: dict[str, int] = {}              # run -> objects its spec load froze
        self._frozen_floor = gc.get_freeze_count()     # the launcher's heap, frozen at fork
        self._code: dict[tuple[str, str], dict[str, codec.TaskCode]] = {}
        self._consts: dict[tuple[str, str], Any] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.served = 0
        self._contention: ContentionProbe | None | bool = False   # False: not opened yet

    def contention(self) -> ContentionProbe | None:
        """This (task-running) thread's contention probe, opened on first use; None where the kernel has none."""
        if self._contention is False:
            self._contention = ContentionProbe.open()
        return self._contention  # type: ignore[return-value]

    # ------------------------------------------------------------------ caches
    def sealer(self, run_id: str) -> RunSealer:
        sealer = self._sealers.get(run_id)
        if sealer is None:
            if len(self._sealers) > 8:
                self._sealers.clear()
            sealer = self._sealers[run_id] = RunSealer(self._secret, run_id)
        return sealer

    def spec(self, run_id: str) -> RunSpec | None:
        spec = self._specs.get(run_id)
        if spec is None:
            data = self.client.get(keys.RunKeys(run_id).protocol)
            if data is None:
                return None
            payload_view = self.sealer(run_id).open(b"spec", data)
            while len(self._specs) >= 2:  # a warm process serves one run after another
                old = next(iter(self._specs))
                del self._specs[old]          # no reference left: the spec is freed before the next freeze
                self._frozen.pop(old, None)
                self._code = {k: v for k, v in self._code.items() if k[0] != old}
                self._consts = {k: v for k, v in self._consts.items() if k[0] != old}
            spec = self._specs[run_id] = self._load_frozen(run_id, payload_view)
        return spec

    def _load_frozen(self, run_id: str, data: memoryview) -> RunSpec:
        """Load a spec and move it out of the cyclic collector's sight (``gc.freeze``).

        A spec is ~10 containers per task that live as long as the run: left to the
        collector, every young and full collection walked them again - 40-150 ms per
        worker and run at 10k tasks, at its start and in the middle of the run, both on
        the run's critical path.  Frozen, they are never walked; an evicted spec is
        freed by reference counting (specs hold no reference cycles).

        Nothing dead is frozen: the collection before the freeze walks only what is
        not frozen yet (this process's objects since the last spec: cheap) and frees
        its cycles.  Should evicted frozen objects sit in cycles after all (a custom
        protocol, a task's code or constants), the frozen count outgrows the live
        specs' and the process re-collects everything once (``gc.unfreeze``).
        """
        gc.collect()
        if gc.get_freeze_count() > self._frozen_floor + sum(self._frozen.values()) + FROZEN_SLACK_OBJECTS:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._frozen_floor = max(0, gc.get_freeze_count() - sum(self._frozen.values()))
        before = gc.get_freeze_count()
        spec = _loads_paused(data)
        gc.freeze()
        self._frozen[run_id] = gc.get_freeze_count() - before
        return spec

    def code(self, run_id: str, worker: str, inline: bytes | None, dynamic: bool) -> dict[str, codec.TaskCode]:
        name = "*" if dynamic else worker
        if (run_id, name) not in self._code:
            data = inline if inline is not None else self.client.get(keys.RunKeys(run_id).subdag(name))
            code = _loads_paused(self.sealer(run_id).open(b"sub:" + name.encode(), data)) if data else {}
            self._code[(run_id, name)] = code
        return self._code[(run_id, name)]

    def constant(self, run_id: str, digest: str) -> Any:
        if (run_id, digest) not in self._consts:
            data = self.client.get(keys.RunKeys(run_id).const(digest))
            if data is None:
                raise RuntimeError(f"constant {digest} of run {run_id} is missing on the server")
            self._consts[(run_id, digest)] = codec.loads_code(self.sealer(run_id).open(b"const:" + digest.encode(),
                                                                                       data))
        return self._consts[(run_id, digest)]

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetch")
        return self._pool
