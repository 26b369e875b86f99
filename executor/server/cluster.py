"""What a Redis Cluster changes for the executor: a blocking pop must not cross hash slots.

A run's keys share one slot (``pl:{RUN}:...``, :mod:`executor.keys`), so a
worker's pops, the completion script and the client's wait on its events work on
a cluster as on one server.  A launcher is the exception: it pops its own control
list (``pl:ctl:LAUNCHER``) and the launch queue of every run it serves
(``pl:{RUN}:launch``) - keys in different slots, maybe on different nodes, which
one ``BLPOP`` may not name together.  :func:`blocking_pop` keeps the one-call
``BLPOP`` when the keys share a slot (always on one server) and otherwise looks at
each key in order with a plain ``LPOP``, then blocks briefly
(``CROSS_SLOT_BLOCK_S``) on the first key alone (the control list): a start
message on a cluster waits at most that long before its launcher sees it.
"""

from __future__ import annotations

from typing import Any, Sequence

from executor.wire import Wire, unpacked

__all__ = ["CROSS_SLOT_BLOCK_S", "ClusterWire", "blocking_pop", "is_cluster_client", "run_evals", "wire_for"]

#: How long a launcher blocks on its control list between sweeps of keys in several slots (seconds).
CROSS_SLOT_BLOCK_S = 0.02


def blocking_pop(client: Any, keys: Sequence[str], timeout: float) -> tuple[bytes, bytes] | None:
    """``BLPOP keys timeout`` - on a Redis Cluster with keys in several slots, a sweep of ``LPOP`` s, then a short
    block on the first key; returns ``(key, value)`` or None, as ``BLPOP`` does."""
    if not is_cluster_client(client) or len({client.keyslot(k) for k in keys}) <= 1:
        return client.blpop(list(keys), timeout=timeout)
    for key in keys:
        value = client.lpop(key)
        if value is not None:
            return key.encode(), value
    return client.blpop([keys[0]], timeout=min(timeout, CROSS_SLOT_BLOCK_S))


def run_evals(client: Any, evals: Sequence[tuple]) -> list[Any]:
    """``EVAL`` each of ``evals`` (``(script, numkeys, *keys_and_args)``) in one pipeline - or, on a Redis Cluster,
    whose pipelines cannot carry scripts, one call each (every call's keys in one slot)."""
    if is_cluster_client(client):
        return [client.eval(*call) for call in evals]
    pipe = client.pipeline(transaction=False)
    for call in evals:
        pipe.eval(*call)
    return pipe.execute()


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is a :class:`redis.cluster.RedisCluster` (it routes keys by slot)."""
    return getattr(client, "keyslot", None) is not None


def wire_for(client: Any) -> Any:
    """A worker's :class:`~executor.wire.Wire` on ``client``'s server, or on a cluster a :class:`ClusterWire`."""
    if not is_cluster_client(client):
        return Wire(client)
    return ClusterWire(client)


def _key_of(command: tuple) -> Any:
    """The first key a command names (a script's first key), or None for a command without keys; a
    :class:`~executor.wire.Packed` command's is its tuple's, a
    :class:`~executor.wire.Head`'s its arguments'."""
    command = unpacked(command)
    name = command[0].upper() if isinstance(command[0], str) else bytes(command[0]).upper().decode()
    if name in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO"):
        return command[3] if int(command[2]) > 0 else None
    if name in _KEYLESS:
        return None
    return command[1] if len(command) > 1 else None


#: Commands a worker sends that name no key (a script's load goes to whichever node the batch goes to).
_KEYLESS = frozenset({"SCRIPT", "PING", "INFO", "TIME", "CLIENT", "CONFIG", "FUNCTION", "ECHO", "HELLO", "AUTH"})


class ClusterWire(Wire):
    """A :class:`~executor.wire.Wire` on a Redis Cluster: one connection per node, each batch sent to the node
    that holds its first key's slot (a batch is one run's: its keys share that slot).  Slots that move while a
    run is live (resharding) are not followed."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.conns: dict[str, Any] = {}
        self.conn = None
        self.pending = 0
        self._poller = None   # Wire.spin_for_reply's (socket, poll object): re-made when the node changes

    def route(self, commands: Sequence[tuple]) -> None:
        key = next((k for k in map(_key_of, commands) if k is not None), None)
        if key is None:
            if self.conn is None:
                self._use(self.client.get_random_node())
            return
        node = self.client.get_node_from_key(key)
        if self.conn is None or self.conns.get(node.name) is not self.conn:
            if self.pending:
                raise RuntimeError("a batch for another cluster node while replies are outstanding")
            self._use(node)

    def _use(self, node: Any) -> None:
        conn = self.conns.get(node.name)
        if conn is None:
            pool = self.client.get_redis_connection(node).connection_pool
            conn = self.conns[node.name] = pool.connection_class(**pool.connection_kwargs)
        self.conn = conn

    def send(self, commands: Sequence[tuple]) -> None:
        self.route(commands)
        super().send(commands)

    def get_bulk(self, command: tuple) -> Any:
        self.route([command])
        return super().get_bulk(command)

    def call_bulk_first(self, commands: Sequence[tuple], spin_s: float = 0.0) -> list[Any]:
        self.route(commands)
        return super().call_bulk_first(commands, spin_s)

    def reset(self) -> None:
        if self.conn is not None:
            super().reset()

    def close(self) -> None:
        for conn in self.conns.values():
            conn.disconnect()
        self.conns.clear()
        self.conn = None
