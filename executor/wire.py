"""A worker's own connection for its per-task round trips: pipelines without redis-py's pipeline machinery.

Per task a worker sends one completion (output ``SET``, counters, invocations)
and, when its next task is not ready, one blocking pop.  Through
``redis.Redis.pipeline()`` each of those cost ~100 us of CPU on top of the
round trip (a pool checkout and release, command stacks, response callbacks,
observability hooks) - on a 2-CPU host as much as the server's work.  A
:class:`Wire` holds one connection of the client's pool class and settings
(same URL, password, socket timeout, hiredis parser) and sends packed
commands, reading the raw replies (``SET`` -> ``b"OK"``, ``BLPOP`` -> ``[key,
value]`` or None).

Replies can be read in two steps: :meth:`send` queues commands and
:meth:`read` takes the first ``n`` replies, so a completion can carry its
worker's next blocking pop and still time the upload when the upload's own
replies arrive (the server answers commands in order, the pop last, when a
notification comes).  Any error while replies are outstanding drops the
connection (it reconnects on the next send), so a reply never answers the
wrong command.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import redis
from redis.exceptions import ResponseError

__all__ = ["Wire"]


class Wire:
    """One dedicated connection; commands are tuples ``(NAME, *args)``."""

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self.conn = pool.connection_class(**pool.connection_kwargs)
        self.pending = 0

    def send(self, commands: Sequence[tuple]) -> None:
        """Queue ``commands`` in one write; their replies wait for :meth:`read`."""
        if not commands:
            return
        try:
            self.conn.send_packed_command(self.conn.pack_commands(commands), check_health=False)
        except BaseException:
            self.reset()
            raise
        self.pending += len(commands)

    def read(self, n: int | None = None) -> list[Any]:
        """The next ``n`` replies (all outstanding ones by default); a server error raises after all ``n`` are read."""
        n = self.pending if n is None else n
        replies: list[Any] = []
        error: ResponseError | None = None
        try:
            for _ in range(n):
                try:
                    replies.append(self.conn.read_response())
                except ResponseError as e:  # the connection stays in step: keep reading
                    error = error or e
                    replies.append(e)
                self.pending -= 1
        except BaseException:
            self.reset()
            raise
        if error is not None:
            raise error
        return replies

    def call(self, commands: Iterable[tuple]) -> list[Any]:
        """Send ``commands`` and read their replies: one round trip."""
        commands = list(commands)
        self.send(commands)
        return self.read(len(commands))

    def reset(self) -> None:
        """Drop the connection (and any reply still owed on it); the next send reconnects."""
        self.pending = 0
        self.conn.disconnect()

    def close(self) -> None:
        self.reset()
