"""Where a run's coordination server lives - embedded or by URL - and who must stop it.

Executor code only needs ``ep.url`` (to hand to worker processes) and
``ep.client()``; whether the server is embedded or external is decided once,
here, and closing the endpoint stops an embedded server but never an external one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import redis

from executor.server.embedded import EmbeddedRedis
from executor.server.urls import client_from_url, connect_url, redacted_url
from planning.errors import ExecutionError

__all__ = ["RedisEndpoint", "connect", "redis_endpoint"]


def connect(
    url: str | None,
    *,
    timeout: float = 5.0,
    embedded: Mapping[str, Any] | None = None,
    **client_kwargs: Any,
) -> tuple[redis.Redis, EmbeddedRedis | None]:
    """A client that has answered PING, and the embedded server if one was started.

    ``url=None`` starts an :class:`EmbeddedRedis` (keyword arguments in
    ``embedded``); the caller owns it and must ``stop()`` it.  Otherwise ``url``
    must be ``redis://``, ``rediss://``, ``unix://`` or ``redis+cluster://`` (password as
    ``redis://:PASSWORD@host:port/db``).  Failing fast here, with the URL and the
    fix in the message, is what keeps a mistyped URL from surfacing later as a
    hung or crashed worker.
    """
    if url is None:
        server = EmbeddedRedis(**dict(embedded or {})).start()
        try:
            client = server.client(**client_kwargs)
            client.ping()
        except BaseException:
            server.stop()
            raise
        return client, server
    return connect_url(url, timeout=timeout, **client_kwargs), None


class RedisEndpoint:
    """Where a run's coordination server lives, and who must stop it (see the module)."""

    def __init__(self, url: str | None = None, *, timeout: float = 5.0, **embedded: Any) -> None:
        self._requested = url
        self._timeout = timeout
        self._embedded_kwargs = embedded
        self.server: EmbeddedRedis | None = None
        self._client: redis.Redis | None = None

    def open(self) -> RedisEndpoint:
        """Start or reach the server and check it answers PING."""
        if self._client is None:
            self._client, self.server = connect(
                self._requested, timeout=self._timeout, embedded=self._embedded_kwargs
            )
        return self

    @property
    def embedded(self) -> bool:
        return self.server is not None

    @property
    def url(self) -> str:
        """URL workers connect with (contains the password, if any: do not log it; see :func:`redacted_url`)."""
        if self.server is not None:
            return self.server.url
        if self._requested is None:
            raise ExecutionError("the Redis endpoint is not open", "call open() or use it as a context manager")
        return self._requested

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new client; an embedded server is reached over its unix socket."""
        if self.server is not None:
            return self.server.client(**kwargs)
        kw = {"socket_connect_timeout": self._timeout, **kwargs}
        return client_from_url(self.url, **kw)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> RedisEndpoint:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "embedded" if self.embedded else "external"
        try:
            shown = redacted_url(self.url)
        except ExecutionError:
            shown = "(not open)"
        return f"<RedisEndpoint {where} {shown}>"


def redis_endpoint(url: str | None = None, **kwargs: Any) -> RedisEndpoint:
    """``with redis_endpoint(url) as ep: ...`` — embedded when ``url`` is None.

    Extra keyword arguments go to :class:`EmbeddedRedis` (e.g. ``tcp=True``).
    """
    return RedisEndpoint(url, **kwargs)
