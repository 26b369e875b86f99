"""A cluster's nodes and the one rule that places a starting worker on one of them.

planlab's executor on one machine runs every worker on that machine; on a Ray
cluster (:mod:`executor.launcher.ray_pool`) a worker is a process on one of the
cluster's nodes.  A :class:`ClusterNode` describes a node as placement and the
host model need it: its cores, its memory, and the profiles it is *marked* for
(Ray's custom resource ``planlab_profile_NAME``).

**Which nodes offer a profile** - Ray's rule for a custom resource: when some
node is marked for the profile, only the marked nodes offer it; when no node is,
every node does (a resource nobody declares is not required).

**The placement rule** (:class:`NodePlacer`), deterministic and the same in the
simulator (:mod:`simulator.host`), the plan's node report (:func:`place_planned`)
and the Ray launcher (which pins each worker's actor to the node this rule
chose):  a worker starting on a profile of ``cpus`` CPUs and ``memory_mb`` MB
goes to the *first node in the given order* that offers the profile and still
has that many CPUs and that much memory free, counting the CPUs and memory of
the workers running there (started, not yet stopped).  When no offering node
has room, it goes to the offering node with the most free CPUs (ties: the
first) and shares its cores - Ray would queue such a worker until room frees;
the model runs it at once on an over-subscribed node, which a plan that holds
more CPUs than the cluster has is told about (:meth:`planning.plan.Plan.capacity_note`).

First fit packs the early workers onto the first nodes, so a run that fits on
one node runs on one node, as Ray's default policy also prefers.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from planning.errors import ConfigError

__all__ = ["ClusterNode", "NodePlacer", "nodes_from_dicts", "place_planned", "plan_nodes", "node_peaks"]


@dataclass(frozen=True)
class ClusterNode:
    """One node: ``cores`` CPUs (> 0), ``memory_mb`` MB (inf: unbounded), the profiles it is marked for."""

    name: str
    cores: float
    memory_mb: float = math.inf
    #: profiles this node is marked for (empty: none; it then offers the profiles no node is marked for)
    profiles: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("a platform node needs a non-empty name", 'give each [[nodes]] table name = "..."')
        for key in ("cores", "memory_mb"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"platform node {self.name!r}: {key} must be a number > 0, got {value!r}",
                                  f"set {key} > 0 (cores: CPUs; memory_mb: MB, inf for unbounded)")
            object.__setattr__(self, key, float(value))
        if math.isinf(self.cores):
            raise ConfigError(f"platform node {self.name!r}: cores must be finite",
                              "leave nodes out for unshared (serverless) workers")
        profiles = self.profiles
        if not isinstance(profiles, (list, tuple)) or not all(isinstance(p, str) for p in profiles):
            raise ConfigError(f"platform node {self.name!r}: profiles must be a list of profile names, "
                              f"got {profiles!r}", 'e.g. profiles = ["large"]')
        object.__setattr__(self, "profiles", tuple(profiles))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cores": self.cores, "memory_mb": self.memory_mb, "profiles": list(self.profiles)}


def nodes_from_dicts(items: Any) -> tuple[ClusterNode, ...]:
    """Nodes from a list of tables (a platform TOML's ``[[nodes]]``); unknown keys and duplicate names raise."""
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"platform nodes must be a list of tables, got {type(items).__name__}",
                          'write one [[nodes]] table per node: name = "a", cores = 2')
    known = {"name", "cores", "memory_mb", "profiles"}
    nodes = []
    for item in items:
        if isinstance(item, ClusterNode):
            nodes.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"a platform node must be a table, got {item!r}", 'e.g. name = "a", cores = 2')
        unknown = sorted(set(item) - known)
        if unknown:
            raise ConfigError(f"platform node has unknown key {unknown[0]!r}", f"use only {', '.join(sorted(known))}")
        nodes.append(ClusterNode(item.get("name", ""), item.get("cores", 0), item.get("memory_mb", math.inf),
                                 item.get("profiles", ())))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ConfigError(f"platform nodes repeat a name: {sorted(n for n in names if names.count(n) > 1)[0]!r}",
                          "give every node its own name")
    return tuple(nodes)


class NodePlacer:
    """The placement rule over ``nodes`` (see the module docstring); :meth:`place` and :meth:`release`."""

    def __init__(self, nodes: Sequence[ClusterNode]) -> None:
        if not nodes:
            raise ValueError("a placement needs at least one node")
        self.nodes = tuple(nodes)
        self.cpus_used = [0.0] * len(self.nodes)
        self.memory_used = [0.0] * len(self.nodes)
        self._offering: dict[str, list[int]] = {}

    def offering(self, profile: str) -> list[int]:
        """The nodes (indices, in order) that offer ``profile``: the marked ones, or all when none is marked."""
        found = self._offering.get(profile)
        if found is None:
            marked = [k for k, n in enumerate(self.nodes) if profile in n.profiles]
            found = self._offering[profile] = marked or list(range(len(self.nodes)))
        return found

    def choose(self, profile: str, cpus: float, memory_mb: float) -> int:
        """The node a worker of ``profile`` would go to now (nothing is reserved)."""
        offering = self.offering(profile)
        for k in offering:
            node = self.nodes[k]
            if self.cpus_used[k] + cpus <= node.cores + 1e-9 and self.memory_used[k] + memory_mb <= node.memory_mb:
                return k
        return max(offering, key=lambda k: (self.nodes[k].cores - self.cpus_used[k], -k))

    def place(self, profile: str, cpus: float, memory_mb: float) -> int:
        """Place a starting worker and hold its CPUs and memory on the node until :meth:`release`."""
        k = self.choose(profile, cpus, memory_mb)
        self.cpus_used[k] += cpus
        self.memory_used[k] += memory_mb
        return k

    def release(self, k: int, cpus: float, memory_mb: float) -> None:
        """A worker on node ``k`` stopped: its CPUs and memory are free again."""
        self.cpus_used[k] -= cpus
        self.memory_used[k] -= memory_mb


def place_planned(worker_start: Sequence[float], worker_stop: Sequence[float], profiles: Sequence[str],
                  catalog: Any, nodes: Sequence[ClusterNode]) -> list[int]:
    """The node of each planned worker (by number), by the rule, meeting the starts and stops in time order.

    At one instant, starts come before stops (the completion that ends a worker
    is the one that starts the workers of its task's children, and the simulator
    places those before the worker's stop frees its CPUs), and starts in worker
    order (number them by first appearance in topological order, as the schedule
    does).  O(m log m) for m workers.
    """
    placer = NodePlacer(nodes)
    events = [(float(t), 1, w) for w, t in enumerate(worker_stop)] + \
             [(float(t), 0, w) for w, t in enumerate(worker_start)]
    heapq.heapify(events)
    node = [-1] * len(profiles)
    while events:
        _, kind, w = heapq.heappop(events)
        prof = catalog[profiles[w]]
        if kind == 0:
            node[w] = placer.place(profiles[w], float(prof.cpus), float(prof.memory_mb))
        elif node[w] >= 0:
            placer.release(node[w], float(prof.cpus), float(prof.memory_mb))
    return node


def plan_nodes(plan: Any, nodes: Sequence[ClusterNode]) -> dict[str, str]:
    """The node each of a plan's workers would run on, by the rule over its planned starts and stops.

    What a deterministic simulation on a platform with these ``nodes`` places
    (:class:`simulator.host.NodeCpus`) when it follows the plan's times, and what
    the Ray launcher does at run time.
    """
    first = {w: k for k, w in enumerate(dict.fromkeys(plan.tasks["worker"]))}   # (tasks: topological order)
    workers = plan.workers.assign(_first=plan.workers["worker"].map(first)).sort_values("_first")
    names = workers["worker"].tolist()
    placed = place_planned(workers["start_s"].tolist(), workers["stop_s"].tolist(), workers["profile"].tolist(),
                           plan.catalog, nodes)
    return {w: nodes[k].name for w, k in zip(names, placed)}


def node_peaks(plan: Any, nodes: Sequence[ClusterNode]) -> dict[str, float]:
    """Per node, the most CPUs the plan's workers placed there hold at once (a node over its cores shares them)."""
    where = plan_nodes(plan, nodes)
    workers = plan.workers
    events: list[tuple[float, int, str, float]] = []
    for w, prof, start, stop in zip(workers["worker"], workers["profile"], workers["start_s"], workers["stop_s"]):
        cpus = float(plan.catalog[prof].cpus)
        events += [(float(start), 1, where[w], cpus), (float(stop), 0, where[w], -cpus)]
    held = {n.name: 0.0 for n in nodes}
    peak = dict(held)
    for _, _, node, delta in sorted(events):
        held[node] += delta
        peak[node] = max(peak[node], held[node])
    return peak
