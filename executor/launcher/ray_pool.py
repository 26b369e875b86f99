"""The Ray launcher's workers: Ray actors instead of forked processes, with the fork pool's interface.

:class:`RayActorPool` is what :class:`executor.launcher.pool.ProcessPool` is to the
local launcher - ``start``, ``reap``, ``check_children``, ``renew_leases``,
``kill_serving``, ``kill_all`` - so the launcher's main loop (its launch queues,
control messages, cancels) is the same code (:mod:`.ray_launcher`).

* **cold**: a new :class:`~executor.launcher.ray_actor.WorkerActor` placed with the
  profile's ``num_cpus`` and ``memory``, plus a sliver of the profile's custom
  resource when some node of the cluster declares it
  (:func:`~executor.launcher.ray_cluster.profile_resource`);
* **warm**: an idle actor of the same profile (and limits) that finished its last
  logical worker less than its ``keep_alive_s`` ago; older idle actors are killed.

Both on the node the host model's placement rule chooses (:mod:`.ray_placement`:
first node by id with the profile's CPUs and memory free): a new actor is pinned
there, a warm start takes an idle actor there only - so a forecast with the
cluster's nodes (``Platform.nodes``) places the workers where this pool does.

A serve call that fails (the actor or its node died) is reported to the run as a
``d|`` event, exactly like a forked worker's death, unless another process holds
that generation of the logical worker; the run re-runs it as the next generation,
which this pool places on a node that is still alive.  An actor that no node can
hold within the run's ``start_timeout_s`` fails the run, naming what it asked for.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import redis

from executor import keys
from executor.auth import RunSealer
from executor.launcher.pool import Serving, death_cost_work, report_death
from executor.launcher.ray_actor import actor_class
from executor.launcher.ray_cluster import import_ray, offered, profile_resource
from executor.launcher.ray_placement import Placement
from executor.messages import encode_error

__all__ = ["RayActorPool"]

#: A profile's custom resource is asked in this small amount: it marks nodes, it does not count workers.
PROFILE_RESOURCE_UNIT = 0.001
#: An actor still unplaced after this long makes the idle (warm) actors give their resources back.
IDLE_YIELD_S = 1.0
#: How often the pool re-reads which custom resources the cluster offers (nodes join and leave).
OFFER_REFRESH_S = 5.0


@dataclass
class _Actor:
    handle: Any
    pool_key: str
    ready: Any                      # ObjectRef of ready(): (holder, node, pid) once placed
    created: float
    start_timeout_s: float
    serving: Serving | None = None
    call: Any = None                # ObjectRef of the serve() in flight
    idle_since: float = 0.0
    keep_alive_s: float = 0.0
    holder: str | None = None
    node: str | None = None
    cpus: float = 0.0               # the logical CPUs and MB Ray holds for it
    memory_mb: float = 0.0
    target: str | None = None       # the node it was pinned to (None: Ray's choice)

    @property
    def where(self) -> str | None:
        """Its node: where Ray placed it once known, else where it was pinned."""
        return self.node or self.target


class RayActorPool:
    """Worker actors of Ray launcher ``launcher_id``; see the module docstring."""

    def __init__(self, client: redis.Redis, url: str, launcher_id: str, secret: bytes,
                 start_timeout_s: float = 30.0) -> None:
        self.client = client
        self.start_timeout_s = start_timeout_s
        self.url = url
        self.launcher_id = launcher_id
        self._secret = secret
        self.actors: list[_Actor] = []
        self._offer: dict[str, float] = {}
        self._offer_read = -OFFER_REFRESH_S
        self.placement = Placement()

    # ------------------------------------------------------------------ starts
    def start(self, msg: dict[str, Any], blob: bytes) -> None:
        """Hand a start to a warm idle actor of its profile, or create (place) a new one.

        Finished serve calls are collected first: an actor whose worker has just stopped
        (the run before ended a moment ago) is idle, not a reason to start another.
        """
        self.reap()
        pool_key = keys.process_pool_key(msg)
        serving = (msg["run"], msg["worker"], int(msg.get("gen", 0)), msg["task"])
        now = time.monotonic()
        cpus, memory_mb = float(msg.get("cpus") or 0.0), float(msg.get("memory_mb") or 0.0)
        target = self.placement.choose(msg["profile"], cpus, memory_mb,
                                       [(a.where, a.cpus, a.memory_mb) for a in self.actors if a.serving is not None])
        warm = next((a for a in self.actors if a.serving is None and a.pool_key == pool_key
                     and now - a.idle_since <= a.keep_alive_s and (target is None or a.where == target)), None)
        actor = warm or self._create(msg, pool_key, target)
        actor.serving = serving
        actor.keep_alive_s = float(msg.get("keep_alive_s", 0.0))
        actor.call = actor.handle.serve.remote(msg["run"], blob, warm is None)

    def _create(self, msg: dict[str, Any], pool_key: str, target: str | None) -> _Actor:
        cpus, memory_mb = msg.get("cpus"), msg.get("memory_mb")
        options: dict[str, Any] = {"num_cpus": float(cpus or 0.0)}
        if memory_mb:
            options["memory"] = int(float(memory_mb) * 2**20)
        marker = profile_resource(msg["profile"])
        if marker in self._offered():
            options["resources"] = {marker: PROFILE_RESOURCE_UNIT}
        if target is not None:
            self._make_room(target, float(cpus or 0.0), float(memory_mb or 0.0))
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(target, soft=True)
        handle = actor_class().options(**options).remote(
            self.url, self.launcher_id, self._secret, msg["profile"], cpus, memory_mb, msg.get("threads"),
            bool(msg.get("limits")))
        actor = _Actor(handle, pool_key, handle.ready.remote(), time.monotonic(), self.start_timeout_s,
                       cpus=float(cpus or 0.0), memory_mb=float(memory_mb or 0.0), target=target)
        self.actors.append(actor)
        return actor

    def _make_room(self, target: str, cpus: float, memory_mb: float) -> None:
        """Idle actors on ``target`` hold logical CPUs Ray counts: end the oldest idle ones the new actor needs."""
        there = sorted((a for a in self.actors if a.where == target),
                       key=lambda a: (a.serving is not None, a.idle_since))
        self.placement.make_room(target, cpus, memory_mb,
                                 [(a, a.cpus, a.memory_mb, a.serving is None) for a in there], self._drop)

    def _offered(self) -> dict[str, float]:
        if time.monotonic() - self._offer_read >= OFFER_REFRESH_S:
            self._offer, self._offer_read = offered(), time.monotonic()
        return self._offer

    # ------------------------------------------------------------------ watching
    def reap(self) -> None:
        """Collect finished serve calls: an actor that finished is idle; one that failed is a death."""
        ray = import_ray()
        self._learn_placements(ray)
        calls = [a.call for a in self.actors if a.call is not None]
        if not calls:
            return
        done, _ = ray.wait(calls, num_returns=len(calls), timeout=0)
        finished = set(done)
        for actor in [a for a in self.actors if a.call in finished]:
            try:
                ray.get(actor.call)
            except Exception as exc:   # noqa: BLE001 - the actor, its process or its node died (or is unreachable)
                self._drop(actor)   # killed first: an unreachable actor must not run on beside its next generation
                self.placement.refresh()   # its node may be gone: the next generation goes elsewhere
                self._report_death(actor, exc)
                continue
            actor.call, actor.serving, actor.idle_since = None, None, time.monotonic()

    def _learn_placements(self, ray: Any) -> None:
        pending = [a.ready for a in self.actors if a.holder is None]
        if not pending:
            return
        done, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
        for actor in [a for a in self.actors if a.ready in set(done)]:
            with contextlib.suppress(Exception):   # a failed placement shows in its serve call
                actor.holder, actor.node, _ = ray.get(actor.ready)

    def check_children(self) -> None:
        """Fail the run of an actor no node could hold in time; end idle actors past their keep-alive.

        Idle actors keep their logical CPUs and memory, so a worker that waits for
        room makes every idle actor leave (a warm pool must not starve a cold start).
        A pinned worker had room made on its node (:meth:`_make_room`), but an actor
        still finishing its last task then becomes idle only after; so a pinned worker
        that waits makes the idle actors *of its node* leave, and only an unpinned one
        empties the warm pool (one slow to start on a busy host, seconds at load 8,
        must not).
        """
        now = time.monotonic()
        waiting = [a for a in self.actors
                   if a.serving is not None and a.holder is None and now - a.created > IDLE_YIELD_S]
        if any(a.target is None for a in waiting):
            for actor in [a for a in self.actors if a.serving is None]:   # idle actors hold their CPUs: free them
                self._drop(actor)
        else:   # a pinned one waits only for its own node: free that node's idle actors (one that was still
            nodes = {a.target for a in waiting}     # finishing when room was made, e.g.), not the whole warm pool
            for actor in [a for a in self.actors if a.serving is None and a.node in nodes]:
                self._drop(actor)
        for actor in list(self.actors):
            if actor.serving is not None and actor.holder is None and now - actor.created > actor.start_timeout_s:
                self._fail_unplaced(actor)
                self._drop(actor)
            elif actor.serving is None and now - actor.idle_since > actor.keep_alive_s:
                self._drop(actor)

    def renew_leases(self) -> None:
        """Nothing to do here: each actor renews its own lease while it beats (:mod:`.ray_actor`)."""

    # ------------------------------------------------------------------ deaths and failures
    def _report_death(self, actor: _Actor, exc: BaseException) -> None:
        """Report a death that cost work, unless another process holds that generation (as the fork pool does)."""
        run, worker, gen, task = actor.serving
        costly, claim = death_cost_work(self.client, actor.serving, actor.holder or "")
        if not costly:
            return
        where = f"on Ray node {actor.node[:8]}" if actor.node else "before Ray placed it"
        how = f"its Ray actor died {where}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        report_death(self.client, run, f"{worker}|{gen}|{task if claim is None else ''}|{how}")

    def _fail_unplaced(self, actor: _Actor) -> None:
        """No node could hold the actor: the run fails with what it asked for and what the cluster has."""
        run, worker, _, task = actor.serving
        k = keys.RunKeys(run)
        have = {name: value for name, value in offered().items() if not name.startswith("node:")}
        text = (f"no Ray node could hold a worker of this profile within start_timeout_s={actor.start_timeout_s:g} s "
                f"(it asks {actor.pool_key.split('|')[1]} CPU(s) and {actor.pool_key.split('|')[2]} MB; the cluster "
                f"has in total {have}); add nodes or resources, or plan with smaller profiles")
        info = {"task": task, "worker": worker, "traceback": text, "attempts": 0, "internal": True}
        pipe = self.client.pipeline(transaction=True)
        pipe.set(k.error, encode_error(RunSealer(self._secret, run), info), nx=True, px=86400_000)
        pipe.rpush(k.events, f"e|{task}")
        pipe.expire(k.events, 86400)
        pipe.execute()

    # ------------------------------------------------------------------ kills
    def _drop(self, actor: _Actor) -> None:
        with contextlib.suppress(Exception):
            import_ray().kill(actor.handle, no_restart=True)
        with contextlib.suppress(ValueError):
            self.actors.remove(actor)

    def kill_serving(self, run: str, pids: list[int]) -> None:
        """Kill the actors serving ``run`` (a failed run; ``pids`` name forked processes, not actors)."""
        for actor in [a for a in self.actors if a.serving is not None and a.serving[0] == run]:
            self._drop(actor)

    def kill_all(self) -> None:
        for actor in list(self.actors):
            self._drop(actor)
