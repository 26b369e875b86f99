"""Where the Ray launcher puts a worker: the host model's placement rule, applied to the live cluster.

Ray's own scheduler would place an actor wherever its policy likes; a forecast
could not know where.  So the launcher decides, by the rule the simulator uses
(:class:`planning.schedule.nodes.NodePlacer` over
:func:`~executor.launcher.ray_cluster.cluster_nodes`: the first node, by node id,
that offers the profile and has its CPUs and memory free, counting the workers
being served there), and pins the actor to that node
(``NodeAffinitySchedulingStrategy``, soft: a node that died meanwhile is
replaced by any other).  A warm start takes an idle actor of the worker's pool
*on that node* only, as the simulator reuses an idle process only on its node.

Ray counts the logical CPUs of idle actors too, so before an actor is pinned to a
node whose idle actors would keep it from fitting, the launcher ends those idle
actors (oldest idle first).  When the rule finds no node with room (a plan that
holds more CPUs than the cluster has), the actor is not pinned and waits in Ray's
queue for room, where the model instead runs it at once on the least loaded node.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from executor.launcher.ray_cluster import cluster_nodes
from planning.schedule.nodes import ClusterNode, NodePlacer

__all__ = ["Placement"]

#: How often the placement re-reads the cluster's nodes (nodes join and leave; a death re-reads at once).
NODES_REFRESH_S = 5.0


class Placement:
    """The launcher's choice of node for each new worker; see the module docstring."""

    def __init__(self) -> None:
        self._nodes: tuple[ClusterNode, ...] = ()
        self._read = -NODES_REFRESH_S

    def nodes(self) -> tuple[ClusterNode, ...]:
        if time.monotonic() - self._read >= NODES_REFRESH_S:
            self.refresh()
        return self._nodes

    def refresh(self) -> None:
        """Read the cluster's live nodes now (after a death: the dead node must not be chosen again)."""
        self._nodes, self._read = cluster_nodes(), time.monotonic()

    def choose(self, profile: str, cpus: float, memory_mb: float, serving: Sequence[tuple[str | None, float, float]]
               ) -> str | None:
        """The node id for a worker of ``profile``, given the (node, CPUs, MB) of the workers being served; None:
        no node has room (or the cluster has no node with CPUs): Ray queues the actor unpinned."""
        nodes = self.nodes()
        if not nodes:
            return None
        placer = NodePlacer(nodes)
        index = {n.name: k for k, n in enumerate(nodes)}
        for node, used_cpus, used_mb in serving:
            k = index.get(node or "")
            if k is not None:
                placer.cpus_used[k] += used_cpus
                placer.memory_used[k] += used_mb
        k = placer.choose(profile, cpus, memory_mb)
        node = nodes[k]
        fits = placer.cpus_used[k] + cpus <= node.cores + 1e-9 and placer.memory_used[k] + memory_mb <= node.memory_mb
        return node.name if fits else None

    def make_room(self, node_id: str, cpus: float, memory_mb: float, held: Sequence[tuple[Any, float, float, bool]],
                  drop: Callable[[Any], None]) -> None:
        """End idle actors on ``node_id`` (``held``: (actor, CPUs, MB, idle) of every actor there, oldest idle first)
        until a new worker of ``cpus`` and ``memory_mb`` fits in Ray's accounting."""
        node = next((n for n in self._nodes if n.name == node_id), None)
        if node is None:
            return
        used_cpus = sum(c for _, c, _, _ in held)
        used_mb = sum(m for _, _, m, _ in held)
        for actor, c, m, idle in held:
            if used_cpus + cpus <= node.cores + 1e-9 and used_mb + memory_mb <= node.memory_mb:
                return
            if idle:
                drop(actor)
                used_cpus, used_mb = used_cpus - c, used_mb - m
