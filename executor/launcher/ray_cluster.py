"""Connecting to a Ray cluster (an optional dependency: the ``ray`` extra), and what its nodes offer.

Ray is imported here, lazily, and nowhere at module level: ``planlab --help``, the
local runner and the local executor never load it (``tests/test_cli_startup.py``).
Both Ray back ends - experiment campaigns (:mod:`experiments.ray_campaign`) and the
executor's Ray launcher (:mod:`executor.launcher.ray_launcher`) - connect through
:func:`connect`, so a missing install or an unreachable address is one clear error.

Custom resources a cluster declares (``ray start --resources '{...}'``) say which
nodes offer what: ``planlab_profile_NAME`` marks the nodes that may run workers of
profile NAME, ``planlab_host`` the nodes that run real-execution cells of a
campaign (one per unit).  A resource nobody declares is not required, so a plain
cluster runs everything anywhere.
"""

from __future__ import annotations

import os
from typing import Any

from planning.errors import ExecutionError
from planning.schedule.nodes import ClusterNode

__all__ = ["HOST_RESOURCE", "connect", "import_ray", "profile_resource", "offered", "node_id", "cluster_nodes"]

#: A campaign's real-execution cell takes one unit of this resource (one cell at a time per unit).
HOST_RESOURCE = "planlab_host"
#: Prefix of the custom resource that marks a node for a profile (:func:`profile_resource`).
PROFILE_PREFIX = "planlab_profile_"


def import_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ExecutionError("Ray is not installed (planlab's Ray back end is optional)",
                             "pip install 'planlab[ray]' (or pip install ray), or run without --ray") from None
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None,
            resources: dict[str, float] | None = None) -> Any:
    """Join the Ray cluster at ``address`` (``"auto"``: the one ``ray start`` made here), or start a local one.

    An already initialised Ray (a test's cluster, a notebook's) is reused as it is.
    A local instance gets ``resources`` (e.g. one ``planlab_host``) and ``num_cpus``.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,   # stdout stays ours (--json)
                              "configure_logging": False}
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(num_cpus=num_cpus, resources=resources or {})
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise ExecutionError(f"cannot reach the Ray cluster at {address!r}: {exc}",
                             "start it with 'ray start --head' (see README: more than one machine), "
                             "or pass the head's address as --ray HOST:6379") from None
    return ray


def profile_resource(profile: str) -> str:
    """The custom resource that marks the nodes allowed to run workers of ``profile``."""
    return f"{PROFILE_PREFIX}{profile}"


def offered() -> dict[str, float]:
    """The cluster's total resources now (logical: CPU, memory, custom ones)."""
    return dict(import_ray().cluster_resources())


def node_id() -> str:
    """The id of the Ray node this code runs on (in a task or actor)."""
    return str(import_ray().get_runtime_context().get_node_id())



def cluster_nodes() -> tuple[ClusterNode, ...]:
    """The cluster's live nodes that can run workers (some CPUs), as the host model describes them, in a fixed order.

    Each node's cores and memory are its *logical* Ray resources (``CPU``,
    ``memory``, what placement counts) and its profiles the ``planlab_profile_NAME``
    resources it declares; the order is by node id.  The Ray launcher places its
    workers by the rule of :mod:`planning.schedule.nodes` over exactly this list, and
    a forecast of a run on the cluster gives the simulator the same list
    (``Platform(nodes=cluster_nodes())``), so both place alike.
    """
    found = []
    for node in import_ray().nodes():
        resources = node.get("Resources") or {}
        if not node.get("Alive") or resources.get("CPU", 0) <= 0:
            continue
        marked = tuple(sorted(k[len(PROFILE_PREFIX):] for k in resources if k.startswith(PROFILE_PREFIX)))
        memory = float(resources.get("memory", 0.0)) / 2**20
        found.append(ClusterNode(str(node["NodeID"]), float(resources["CPU"]), memory or float("inf"), marked))
    return tuple(sorted(found, key=lambda n: n.name))
