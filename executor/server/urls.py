"""Server URLs: what may be shown, what is safe to use, and a client that has answered PING.

Any server other than the embedded one is used by URL (``redis://``,
``rediss://``, ``unix://``; a Redis Cluster by one of its nodes, ``redis+cluster://``:
:func:`client_from_url` gives every part of the executor the right client).  A
password never reaches a log or an error message (:func:`redacted_url`); a
password-less server on another host is refused
(:func:`check_url_security`); a mistyped URL fails at once with the fix
(:func:`connect_url`) instead of surfacing later as a hung or crashed worker.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

from planning.errors import ExecutionError

__all__ = ["check_url_security", "client_from_url", "connect_url", "is_cluster_url", "is_loopback", "redacted_url"]

_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
#: A Redis Cluster is named by one of its nodes with this scheme: ``redis+cluster://[:PASSWORD@]HOST:PORT``.
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return "://" in url and url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def client_from_url(url: str, **kwargs: Any) -> Any:
    """A client of the server at ``url``: a :class:`redis.cluster.RedisCluster` for a cluster URL (it follows each
    key's slot to its node; a run's keys share one slot), else a :class:`redis.Redis`.  Not checked (no PING)."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **kwargs)
    from redis.cluster import RedisCluster

    scheme, rest = url.split("://", 1)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("lib_name", "lib_version")}
    return RedisCluster.from_url(f"{scheme.lower().split('+')[0]}://{rest}", **kwargs)


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for error messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (reachable from this host only)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_security(url: str, *, insecure: bool = False) -> None:
    """Refuse a server on another host without a password (``insecure=True`` overrides).

    Whoever can write to the coordination server can stop or corrupt runs (payloads
    are authenticated, so not run code): a password-less server must be private to
    this host - a unix socket or a loopback address.
    """
    if insecure or "://" not in url:
        return
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss", *CLUSTER_SCHEMES):
        return  # a unix socket is local; an unknown scheme is connect()'s to report
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        password = parts.password
    except ValueError:
        return  # malformed: connect() reports it with the fix
    if password or is_loopback(host) or not host:
        return
    raise ExecutionError(
        f"refusing the Redis server at {redacted_url(url)}: it is on another host and the URL has no password",
        "protect the server with a password (redis://:PASSWORD@HOST:PORT/DB, or rediss:// for TLS), "
        "or pass --insecure (insecure=True) if the network is trusted",
    )


def connect_url(url: str, *, timeout: float, **client_kwargs: Any) -> redis.Redis:
    """A client of the server at ``url`` that has answered PING; each way to fail names its fix."""
    shown = redacted_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ExecutionError(
            f"unsupported Redis URL {shown!r}",
            "use redis://[:PASSWORD@]HOST:PORT/DB, rediss://... (TLS), unix://[:PASSWORD@]/PATH, "
            "redis+cluster://[:PASSWORD@]HOST:PORT (a Redis Cluster), or no URL to start an embedded server",
        )
    kwargs = {"socket_connect_timeout": timeout, "socket_timeout": timeout, **client_kwargs}
    try:
        client = client_from_url(url, **kwargs)
    except ValueError as exc:
        raise ExecutionError(f"malformed Redis URL {shown!r}: {exc}", "fix the URL") from exc
    except (redis.exceptions.RedisClusterException, redis.exceptions.ConnectionError, OSError) as exc:
        raise ExecutionError(f"cannot reach a Redis Cluster at {shown} ({exc})",
                             "start the cluster (every node in cluster mode, all slots assigned) or correct the URL; "
                             "a single server is redis://HOST:PORT") from exc
    try:
        client.ping()
    except (redis.exceptions.ResponseError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
            OSError) as exc:   # AuthenticationError is a ConnectionError
        client.close()
        raise _ping_failure(exc, shown) from exc
    return client


def _ping_failure(exc: Exception, shown: str) -> ExecutionError:
    """The error to raise for a failed first PING, naming the fix."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return ExecutionError(
            f"the Redis server at {shown} refused the credentials ({exc})",
            "put the right password in the URL: redis://:PASSWORD@HOST:PORT/DB "
            "(or redis://USER:PASSWORD@... for an ACL user)",
        )
    if isinstance(exc, redis.exceptions.ResponseError):
        msg = str(exc)
        if "AUTH" in msg.upper() or "NOPERM" in msg.upper():
            return ExecutionError(
                f"the Redis server at {shown} rejected authentication ({msg})",
                "remove the password from the URL if the server has none, or use the right one",
            )
        return ExecutionError(f"the Redis server at {shown} answered PING with an error: {msg}", None)
    return ExecutionError(
        f"cannot reach a Redis server at {shown} ({exc})",
        "start the server or correct the URL, or pass no URL to use an embedded server",
    )
