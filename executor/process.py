"""A worker process's state: its connection, identity, heartbeat slot, and caches of run specs and code.

A process serves one logical worker after another (warm starts), possibly of
different runs, so what it loads from the server - a run's spec (the worker
protocol over the code-less workflow), its workers' code, large constants - is
cached per run, authenticated before it is unpickled (:mod:`executor.auth`),
and kept out of the cyclic garbage collector's walks (``gc.freeze``).
"""

from __future__ import annotations

import gc
import hashlib
import os
import socket
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from executor import codec, keys
from executor.contention import ContentionProbe
from executor.auth import RunSealer
from executor.heartbeat import Slot
from executor.scripts import Scripts
from executor.server.cluster import is_cluster_client, wire_for
from executor.server.urls import client_from_url
from executor.settings import ExecutorSettings
from executor.wire import Wire
from planning.gcpause import paused_gc
from planning.protocol import WorkerProtocol

__all__ = ["RunSpec", "ProcessContext", "FROZEN_SLACK_OBJECTS", "spec_digest"]


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
    #: sub-DAG name (``RunKeys.subdag``) -> the digest of its pickled code, named in start messages like the spec's
    code_digests: dict[str, str] = field(default_factory=dict)

    #: what the run's client named the pickled spec (:func:`spec_digest`): set where it is known, never pickled
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.n_parents:
            self.n_parents = {t: len(self.protocol.parents(t)) for t in self.protocol.index}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "digest"}


def spec_digest(payload: bytes | memoryview) -> str:
    """The name of a pickled spec's bytes: two runs of one plan with the same settings share it.

    The client sends it in its sealed start messages; a warm process that loaded a spec
    of that name for an earlier run (authenticated then) uses it again instead of
    reading and unpickling the same bytes (:meth:`ProcessContext.cached_spec`).
    """
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def _loads_paused(data: bytes | memoryview) -> Any:
    """Unpickle a run's spec or code with the cyclic garbage collector paused.

    A 10k-task spec is ~100k containers: unpickling them with the collector on
    took 0.26-0.32 s instead of 0.09 s here (each young collection re-walks the
    growing heap), on the critical path of every worker's start.  Unpickling
    creates no garbage, so pausing the collector loses nothing.
    """
    with paused_gc():
        return codec.loads_code(data)


def _loads_counted(data: bytes | memoryview) -> tuple[Any, int]:
    """Unpickle with the collector paused, and how many tracked containers that created.

    Paused, the collector never resets the young generation's count, which every new
    container increments (and every freed one decrements): its rise is the number of
    containers the unpickling created, without walking the heap.
    """
    with paused_gc():
        before = gc.get_count()[0]
        value = codec.loads_code(data)
        return value, max(0, gc.get_count()[0] - before)


#: Sub-DAGs of code a process keeps by digest across runs (two workers' each of two plans).
CODES_KEPT = 4

#: Frozen objects beyond the live specs' and the inherited heap's that trigger a full re-collection.
FROZEN_SLACK_OBJECTS = 100_000


class ProcessContext:
    """One worker process: its connection, identity, heartbeat slot, caches of run specs and code."""

    def __init__(self, url: str, launcher_id: str, profile: str, limits: dict[str, Any], secret: bytes,
                 slot: Slot | None = None, limits_in_force: Callable[[], None] | None = None) -> None:
        # No CLIENT SETINFO on connect: two more round trips (~3 ms at load) on every cold start's two connections.
        self.client = client_from_url(url, socket_timeout=30.0, lib_name=None, lib_version=None)
        self.launcher_id = launcher_id
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.holder = f"{launcher_id}:{self.pid}:{self.host}"
        self.profile = profile
        self.limits = limits
        self.slot = slot or Slot()
        #: a forked process's idle list (None: a Ray actor, no warm pool): it joins it in its logical worker's
        #: last write (:meth:`executor.worker_reporting.WorkerReporting._finish`), which sets ``joined_idle`` -
        #: not on a Redis Cluster, where that list (the launcher's slot) cannot share the run's transaction
        self.idle_key: str | None = None
        self.joined_idle = False
        # loaded by the process's first round trip (executor.worker_start); on a Redis Cluster now, on every
        # primary (a process serves runs whose slots live on different nodes)
        self.scripts = Scripts(self.client if is_cluster_client(self.client) else None)
        self.wire = wire_for(self.client)
        #: a completion may hand a start straight to this launcher's idle processes (executor.scripts): not on
        #: a Redis Cluster (their lists live in the launcher's slot, not the run's) nor under the Ray launcher
        self.handoff_to_idle = not is_cluster_client(self.client)
        self.idle_in_report = not is_cluster_client(self.client)   # (see idle_key)
        self._secret = secret
        self._sealers: dict[str, RunSealer] = {}
        self._specs: OrderedDict[str, RunSpec] = OrderedDict()
        self._digests: dict[str, str] = {}              # run -> its spec's digest (where the start named it)
        self._frozen: dict[str, int] = {}              # run -> objects its spec load froze
        self._frozen_floor: int | None = None          # the heap frozen besides the specs (counted when needed)
        self._untidy = False                           # a spec was loaded since the last tidy()
        self._evicted = 0                              # objects of the specs evicted since the frozen heap's last count
        self._code: dict[tuple[str, str], dict[str, codec.TaskCode]] = {}
        self._consts: dict[tuple[str, str], Any] = {}
        self._code_by_digest: OrderedDict[str, dict[str, codec.TaskCode]] = OrderedDict()   # kept across runs
        self.served = 0
        self._contention: ContentionProbe | None | bool = False   # False: not opened yet
        self._limits_in_force = limits_in_force

    def await_limits(self) -> None:
        """Wait until the process runs under its limits (joined in a thread during a cold start); once."""
        wait, self._limits_in_force = self._limits_in_force, None
        if wait is not None:
            wait()

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
        """The run's spec, from the cache or the server (None: the run's keys are gone)."""
        spec = self._specs.get(run_id)
        if spec is None:
            spec = self.install_spec(run_id, self.client.get(keys.RunKeys(run_id).protocol))
        return spec

    def cached_spec(self, run_id: str, digest: str | None = None) -> RunSpec | None:
        """The run's cached spec; else, given the spec's ``digest`` (from the run's sealed start message), the
        same spec loaded for an earlier run - a campaign's repeats of one plan skip reading and unpickling it."""
        spec = self._specs.get(run_id)
        if spec is not None or not digest:
            return spec
        earlier = next((run for run, d in self._digests.items() if d == digest), None)
        if earlier is None:
            return None
        spec = self._specs.pop(earlier)    # one spec object, now under this run (the newest: evicted last)
        self._specs[run_id] = spec
        self._frozen[run_id] = self._frozen.pop(earlier, 0)
        self._digests[run_id] = self._digests.pop(earlier)
        self._forget(earlier)
        return spec

    def install_spec(self, run_id: str, data: bytes | None, digest: str | None = None) -> RunSpec | None:
        """Authenticate, load and cache a spec read from the server (``data`` None: the run is over).

        ``digest``: the spec's name in the run's start message (:func:`spec_digest`), kept so later runs
        of the same spec find it (:meth:`cached_spec`).
        """
        if data is None:
            return None
        payload_view = self.sealer(run_id).open(b"spec", data)
        while len(self._specs) >= 2:  # a warm process serves one run after another
            old = next(iter(self._specs))
            del self._specs[old]          # no reference left: the spec is freed before the next freeze
            self._evicted += self._frozen.pop(old, 0)
            self._digests.pop(old, None)
            self._forget(old)
        spec = self._specs[run_id] = self._load_frozen(run_id, payload_view)
        if digest:
            self._digests[run_id] = digest
            if isinstance(spec, RunSpec):
                spec.digest = digest   # named again in the start messages this process sends
        return spec

    def _forget(self, run_id: str) -> None:
        """Drop a run's cached code and constants (its spec is gone or serves another run now)."""
        self._code = {k: v for k, v in self._code.items() if k[0] != run_id}
        self._consts = {k: v for k, v in self._consts.items() if k[0] != run_id}

    def _load_frozen(self, run_id: str, data: memoryview) -> RunSpec:
        """Load a spec and move it out of the cyclic collector's sight (``gc.freeze``), on the start's critical path.

        A spec is ~10 containers per task that live as long as the run: left to the
        collector, every young and full collection walked them again - 40-150 ms per
        worker and run at 10k tasks, at its start and in the middle of the run, both on
        the run's critical path.  Frozen, they are never walked; an evicted spec is
        freed by reference counting (specs hold no reference cycles).

        Nothing here walks the frozen heap: ``gc.get_freeze_count()`` counts it object by
        object (~95k inherited objects: 1-9 ms per call here, three calls per load took
        20-35 ms of a 2-task run's warm start at load 7), and the collection that frees
        the previous logical worker's cycles ran while the process was idle
        (:meth:`tidy`).  The objects frozen are counted cheaply: those not yet frozen
        (few, since the last tidy) plus the containers the unpickling created (the young
        generation's allocation count, the collector being paused).
        """
        if self._untidy:
            self.tidy()   # no idle moment since the last load (a caller outside a worker's loop)
        survivors = len(gc.get_objects())
        spec, created = _loads_counted(data)
        gc.freeze()
        self._frozen[run_id] = survivors + created
        self._untidy = True
        return spec

    def tidy(self) -> None:
        """Collect the cycles a logical worker left, and re-collect frozen cycles once they outgrow the slack.

        Called when the process goes idle (off every run's critical path) and, if it never
        did, before the next spec load; normally only the objects not frozen are walked
        (~0.1 ms).  Should evicted frozen objects sit in cycles (a custom protocol, a
        task's code or constants), the frozen count outgrows the live specs' and the
        process re-collects everything once (``gc.unfreeze``).  Counting the frozen heap
        walks it, so it is counted only when the specs evicted since the last count
        could exceed the slack; the first time, the heap inherited at fork is not known
        yet, so everything is re-collected once and counted then.
        """
        self._untidy = False
        gc.collect()
        if self._evicted <= FROZEN_SLACK_OBJECTS:
            return
        self._evicted = 0
        live = sum(self._frozen.values())
        if self._frozen_floor is None or gc.get_freeze_count() > self._frozen_floor + live + FROZEN_SLACK_OBJECTS:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._frozen_floor = max(0, gc.get_freeze_count() - live)

    def code(self, run_id: str, worker: str, inline: bytes | None, dynamic: bool,
             read: dict[str, bytes | None] | None = None, digest: str | None = None) -> dict[str, codec.TaskCode]:
        """The code of a worker's tasks (every task's for a dynamic run), cached per run.

        From the start message (``inline``), from what the start's first round trip read
        (``read``: sub-DAG name -> stored bytes, :mod:`executor.worker_start`), else read now;
        or, when the start names its ``digest`` (``RunSpec.code_digests``), the same code an
        earlier run loaded (a few are kept: a campaign's repeats of one plan).
        """
        name = "*" if dynamic else worker
        if (run_id, name) not in self._code:
            code = self._code_by_digest.get(digest) if digest else None
            if code is None:
                if inline is not None:
                    data = inline
                elif read is not None and name in read:
                    data = read[name]
                else:
                    data = self.client.get(keys.RunKeys(run_id).subdag(name))
                code = _loads_paused(self.sealer(run_id).open(b"sub:" + name.encode(), data)) if data else {}
                if digest and data:
                    self._code_by_digest[digest] = code
                    while len(self._code_by_digest) > CODES_KEPT:
                        self._code_by_digest.popitem(last=False)
            else:
                self._code_by_digest.move_to_end(digest)
            self._code[(run_id, name)] = code
        return self._code[(run_id, name)]

    def code_cached(self, run_id: str, worker: str, digest: str | None = None) -> bool:
        """Whether this worker's (or a dynamic run's) code is cached already (or code of that ``digest``)."""
        return (run_id, worker) in self._code or (run_id, "*") in self._code or bool(
            digest and digest in self._code_by_digest)

    def constant(self, run_id: str, digest: str) -> Any:
        if (run_id, digest) not in self._consts:
            data = self.client.get(keys.RunKeys(run_id).const(digest))
            if data is None:
                raise RuntimeError(f"constant {digest} of run {run_id} is missing on the server")
            self._consts[(run_id, digest)] = codec.loads_code(self.sealer(run_id).open(b"const:" + digest.encode(),
                                                                                       data))
        return self._consts[(run_id, digest)]

