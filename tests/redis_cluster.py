"""A real 3-master Redis Cluster on localhost for tests: valkey-server (or redis-server) in cluster mode.

Each master is its own server process on a free TCP port of the loopback
interface, owning a third of the 16384 hash slots (``CLUSTER ADDSLOTSRANGE``),
joined by ``CLUSTER MEET``; ready when every node says ``cluster_state:ok``.
Stopped (and its folders removed) when the context ends, even on a failed start.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from executor.server.binary import find_server_binary

SLOTS = 16384


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_node(binary: Path, folder: Path) -> tuple[int, subprocess.Popen]:
    """One cluster-enabled server on a free port that answers PING (a port taken meanwhile: another one)."""
    for _ in range(5):
        port = _free_port()
        node = folder / str(port)
        node.mkdir(parents=True)
        proc = subprocess.Popen([str(binary), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                                 "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no",
                                 "--dir", str(node), "--logfile", str(node / "log")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if redis.Redis(port=port, socket_timeout=1).ping():
                    return port, proc
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"no cluster node would start (see {folder}/*/log)")


@contextlib.contextmanager
def redis_cluster(folder: Path, masters: int = 3) -> Iterator[list[int]]:
    """Start a cluster of ``masters`` nodes in ``folder``; yields their ports; stops every node at the end."""
    binary = find_server_binary()
    procs: list[subprocess.Popen] = []
    try:
        ports = []
        for _ in range(masters):
            port, proc = _start_node(binary, folder)
            ports.append(port)
            procs.append(proc)
        clients = [redis.Redis(port=p, socket_timeout=5) for p in ports]
        step = SLOTS // masters
        for k, c in enumerate(clients):
            c.execute_command("CLUSTER ADDSLOTSRANGE", k * step, SLOTS - 1 if k == masters - 1 else (k + 1) * step - 1)
        for c in clients[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", ports[0])
        deadline = time.monotonic() + 30
        while not all(c.cluster("info").get("cluster_state") == "ok" for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not reach cluster_state:ok in 30 s")
            time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
