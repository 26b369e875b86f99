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

Commands are packed here, not by hiredis: ``hiredis.pack_command`` copies every
argument into one buffer, ~1.5 ms for a 1 MiB output on this machine (more than
sending it), while a large argument sent as its own chunk is never copied
before the kernel's; small commands pack in ~7 us instead of ~20 us.

Replies can be read in two steps: :meth:`send` queues commands and
:meth:`read` takes the first ``n`` replies, so a completion can carry its
worker's next blocking pop and still time the upload when the upload's own
replies arrive (the server answers commands in order, the pop last, when a
notification comes).  Any error while replies are outstanding drops the
connection (it reconnects on the next send), so a reply never answers the
wrong command.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Iterable, Iterator, Sequence

import mmap
import os
import select
import socket
import struct
import time

import redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

__all__ = ["Wire", "pack", "packed", "Packed", "Head", "head", "spin_budget", "OWN_LOAD"]

try:   # what redis-py's hiredis reader returns while a reply is incomplete (None: read through redis-py)
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:   # pragma: no cover - another redis-py layout
    _NOT_ENOUGH_DATA = None

#: First read of :meth:`Wire.get_bulk`: the header and, for a small reply, all of it.
_HEAD_READ = 16 * 1024

#: Arguments longer than this are sent as their own chunk instead of being copied into the command buffer.
BIG_ARG_BYTES = 16 * 1024


class Packed(bytes):
    """One command already in RESP form (:func:`packed`): sent as is, e.g. a worker's wait, the same every time.

    ``command`` is the tuple it packs: what a router reads its key from (a cluster sends it to that key's node)."""

    command: tuple


def packed(command: tuple) -> Packed:
    """``command`` packed once, for :meth:`Wire.send` in place of the tuple (a reply is owed as for it)."""
    out = Packed(b"".join(pack([command])))
    out.command = tuple(command)
    return out


class Head(bytes):
    """A command's leading arguments already in RESP form (:func:`head`): a command ``(head, *rest)`` is sent
    as those arguments followed by ``rest``.  A worker's completion starts with the same eight every task of a
    run (``EVALSHA``, the script's digest, the key count, its five keys): packed once, they take ~10 us of packing
    and key building at load 9 (~4 us quiet) off each hop of a chain whose edges cross workers.

    ``args`` is the tuple it packs (what a router reads a key from), ``count`` their number."""

    args: tuple
    count: int


def head(args: tuple) -> Head:
    """``args`` packed once as the start of a command (``(head(args), *rest)`` sends as ``(*args, *rest)``)."""
    whole = b"".join(pack([tuple(args)]))
    out = Head(whole[whole.index(b"\r\n") + 2:])   # without the array's length: the command's rest adds to it
    out.args = tuple(args)
    out.count = len(args)
    return out


def unpacked(command: tuple | Packed) -> tuple:
    """A command as the plain tuple it sends (a :class:`Packed` one's tuple, a :class:`Head`'s arguments inlined)."""
    if type(command) is Packed:
        return command.command
    if command and type(command[0]) is Head:
        return command[0].args + tuple(command[1:])
    return command


def pack(commands: Iterable[tuple | Packed]) -> list[bytes | memoryview]:
    """RESP arrays of bulk strings for ``commands``: small parts joined, large arguments by reference.

    Arguments are ``bytes``-like, ``str`` (UTF-8), ``int`` or ``float`` (``repr``), as redis-py encodes them.
    The common types are told apart by ``type()`` and the parts joined once (a completion's ~30
    arguments: 13 us instead of 15 us at load 9); the rest go through :func:`_coerce`.
    """
    out: list[bytes | memoryview] = []
    parts: list[Any] = []
    for cmd in commands:
        if type(cmd) is Packed:
            parts.append(cmd)
            continue
        if type(cmd[0]) is Head:   # leading arguments packed once (:func:`head`)
            parts += (b"*%d\r\n" % (cmd[0].count + len(cmd) - 1), cmd[0])
            cmd = cmd[1:]
        else:
            parts.append(b"*%d\r\n" % len(cmd))
        for arg in cmd:
            kind = type(arg)
            if kind is str:
                arg = arg.encode()
            elif kind is int:
                arg = b"%d" % arg
            elif kind is not bytes:
                arg = _coerce(arg)
            n = len(arg)
            if n > BIG_ARG_BYTES:
                parts.append(b"$%d\r\n" % n)
                out.append(b"".join(parts))
                out.append(arg)
                parts = [b"\r\n"]
            else:
                parts += (b"$%d\r\n" % n, arg, b"\r\n")
    if parts:
        out.append(b"".join(parts))
    return out


def _coerce(arg: Any) -> bytes | bytearray | memoryview:
    """An argument of a less common type as bytes (a bool is refused: redis-py refuses it too)."""
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):
        raise TypeError("a bool is not a Redis argument: send an int or bytes")
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    if isinstance(arg, memoryview):
        return arg.cast("B") if arg.format != "B" or arg.ndim != 1 else arg
    if isinstance(arg, (bytes, bytearray)):
        return arg
    raise TypeError(f"cannot send a {type(arg).__name__} to Redis: send bytes, str, int or float")


#: Runnable processes a run of its own keeps on the host while one of its workers spins: that worker, the one
#: it waits for, the server (alternately busy with it): the load average they add, beside other work's.
OWN_LOAD = 2.0


def spin_budget(spin_wait_s: float, load: float | None = None, cpus: int | None = None) -> float:
    """How long a worker polls for a reply before it sleeps (:meth:`Wire.spin_for_reply`): ``spin_wait_s``
    while other work leaves the host a CPU idle (its 1-minute load average below its CPU count plus
    :data:`OWN_LOAD`, what the run's own processes add), else 0.

    A spin saves the scheduler's wake-up of an idle CPU; on a host busy with other work no CPU
    idles, there is no such wake-up to save, and the spin's polls would take turns from runnable
    processes (measured here at load 6: a ping-pong's hop 126 us without, 204 us with a spin).
    """
    if spin_wait_s <= 0:
        return 0.0
    load = os.getloadavg()[0] if load is None else load
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    return spin_wait_s if load < cpus + OWN_LOAD else 0.0


class Wire:
    """One dedicated connection; commands are tuples ``(NAME, *args)``."""

    #: :meth:`send` and :meth:`get_bulk` move a payload in one blocking call (:func:`blocking`): for a
    #: background thread beside a CPU-bound task (pre-load, delayed I/O), which then takes the GIL back once,
    #: not once per chunk the socket's buffer holds
    whole_transfers = False
    #: the socket given kernel timeouts (:meth:`_kernel_timeouts`); a class default, so that a subclass with an
    #: ``__init__`` of its own (:class:`executor.server.cluster.ClusterWire`) has it too
    _tuned: socket.socket | None = None

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self.conn = pool.connection_class(**pool.connection_kwargs)
        self.pending = 0
        self._poller: tuple[Any, Any] | None = None   # (socket, its poll object)
        self._tuned = None

    def _kernel_timeouts(self) -> None:
        """Connect if needed and give the socket its timeout as the kernel's (``SO_RCVTIMEO``/``SO_SNDTIMEO``).

        A socket with a Python-level timeout polls before every ``recv`` and ``send`` (CPython's
        ``sock_call``): two system calls where one does, each round trip of a chain's hop paying
        for polls (~1-2 us each) whose answer the worker's spin already knows.  In blocking mode with
        the same timeout in the kernel, a call that times out fails with ``EAGAIN``, which
        :meth:`send` and :meth:`read` report as the :class:`TimeoutError` a Python timeout gave.
        """
        sock = self.conn._sock
        if sock is None:
            self.conn.connect()
            sock = self.conn._sock
        if sock is self._tuned or sock is None:
            return
        timeout = sock.gettimeout()
        if timeout:    # None: blocking already, nothing to move; 0: non-blocking, left as it is
            seconds = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, seconds)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, seconds)
            sock.settimeout(None)
        self._tuned = sock

    def spin_for_reply(self, seconds: float) -> bool:
        """Poll, without sleeping in the kernel, up to ``seconds`` for a reply to arrive; whether one did.

        A process blocked in ``recv`` is woken by the scheduler when the reply comes:
        on an idle 2-CPU host that wake-up costs ~100 us (``FACTS.md``: a round trip is
        33-47 us on one vCPU, 145-210 us when the reply must wake the other), as much as
        the rest of a hop between workers.  A short spin first catches a reply that comes
        soon (the next task of an alternating chain) on a CPU that is already awake.  It
        yields the CPU between polls, so a runnable server or worker on a busy host is not
        starved.  False when no reply came (the caller then blocks as usual), or when
        the reply is not read through hiredis.
        """
        if seconds <= 0 or not self.pending:
            return False
        reader = getattr(self.conn._parser, "_reader", None)
        sock = self.conn._sock
        if reader is None or sock is None:
            return False
        if reader.has_data():
            return True
        if self._poller is None or self._poller[0] is not sock:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            self._poller = (sock, poller)
        poll = self._poller[1].poll
        deadline = time.perf_counter() + seconds
        while not poll(0):
            if time.perf_counter() >= deadline:
                return False
            os.sched_yield()
        return True

    def reply_or(self, other: int, spin_s: float, wait_s: float = 1.0) -> bool:
        """Wait until a reply can be read (True) or the file descriptor ``other`` is readable first (False).

        Polls both for up to ``spin_s`` without sleeping (as :meth:`spin_for_reply`), then sleeps in
        ``poll`` up to ``wait_s``; True as well when that passes or the reply is not read through hiredis,
        so the caller's :meth:`read` then blocks as usual (with the socket's own timeout).  A worker
        waits so for its notification from the server and a direct one (:mod:`executor.direct_notes`).
        """
        reader = getattr(self.conn._parser, "_reader", None)
        sock = self.conn._sock
        if not self.pending or reader is None or sock is None or reader.has_data():
            return True
        fd = sock.fileno()
        cached = self._both_poller
        if cached is None or cached[0] is not sock or cached[1] != other:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(other, select.POLLIN)
            cached = self._both_poller = (sock, other, poller)
        poll = cached[2].poll
        events = poll(0)
        if not events and spin_s > 0:
            deadline = time.perf_counter() + spin_s
            while not events and time.perf_counter() < deadline:
                os.sched_yield()
                events = poll(0)
        if not events:
            events = poll(int(wait_s * 1000))
        return not events or any(f == fd for f, _ in events)

    #: :meth:`reply_or`'s (socket, other descriptor, poll object)
    _both_poller: tuple[Any, int, Any] | None = None

    def send(self, commands: Sequence[tuple]) -> None:
        """Queue ``commands`` in one write; their replies wait for :meth:`read`."""
        if not commands:
            return
        try:
            if self.conn._sock is None or self.conn._sock is not self._tuned:
                self._kernel_timeouts()
            with blocking(self.conn._sock, socket.SO_SNDTIMEO) if self.whole_transfers else nullcontext():
                self.conn.send_packed_command(pack(commands), check_health=False)
        except ConnectionError as e:
            self.reset()
            if isinstance(e.__context__, BlockingIOError):   # the kernel's timeout (:meth:`_kernel_timeouts`)
                raise TimeoutError("Timeout writing to socket") from None
            raise
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
                    replies.append(self._reply())
                except ResponseError as e:  # the connection stays in step: keep reading
                    error = error or e
                    replies.append(e)
                self.pending -= 1
        except ConnectionError as e:
            self.reset()
            if isinstance(e.__context__, BlockingIOError):   # the kernel's timeout (:meth:`_kernel_timeouts`)
                raise TimeoutError("Timeout reading from socket") from None
            raise
        except BaseException:
            self.reset()
            raise
        if error is not None:
            raise error
        return replies

    def _reply(self) -> Any:
        """The next reply, taken from the hiredis reader (receiving into it while it holds none).

        redis-py's ``read_response`` costs ~5 us per reply here (its host-error text, health
        check and push-message handling) against ~0.1 us for the reader's own ``gets``: three
        replies per hop of a chain whose edges cross workers, two on its critical path.  A
        connection without hiredis reads through redis-py.  A RESP3 push message (none is asked for
        on this connection) goes to the parser's push handler and the next reply is read, as redis-py
        does; a server error is returned as a ``ResponseError`` and raised here, as redis-py raises it.
        """
        parser = self.conn._parser
        reader = getattr(parser, "_reader", None)
        if reader is None or _NOT_ENOUGH_DATA is None:
            return self.conn.read_response()
        push = getattr(parser, "_hiredis_PushNotificationType", None)
        while True:
            reply = reader.gets()
            while reply is _NOT_ENOUGH_DATA:
                try:
                    parser.read_from_socket()   # the socket's timeout raises redis-py's TimeoutError
                except OSError as e:
                    raise ConnectionError(f"Error while reading a reply: {e.args}") from None
                reply = reader.gets()
            if push is None or type(reply) is not push:
                break
            parser.handle_push_response(reply)
        if isinstance(reply, (ResponseError, ConnectionError)):
            raise reply
        if type(reply) is list and reply and isinstance(reply[0], ConnectionError):
            raise reply[0]
        return reply

    def get_bulk(self, command: tuple) -> bytearray | memoryview | None:
        """One ``GET``/``GETRANGE`` whose reply is large, received straight into a buffer of its size.

        hiredis reads a reply in ``socket_read_size`` chunks into its own growing
        buffer and then copies it into a ``bytes`` (~0.62 ms per MiB here); parsing the
        ``$<n>`` header and receiving the payload into one buffer takes ~0.35 ms (a ``bytearray``; a background
        receive of a large one, ``whole_transfers``, a view of a populated mapping: :func:`_new_buffer`).
        Needs no reply outstanding on the connection (the parser reads the reply when it
        holds buffered bytes).  Returns None for a missing key; any reply but a bulk
        string, a null or an error drops the connection.
        """
        if self.pending:
            raise RuntimeError(f"{self.pending} replies are still outstanding on this connection")
        parser_reader = getattr(self.conn._parser, "_reader", None)
        if parser_reader is not None and parser_reader.has_data():
            return self.call([command])[0]
        self.send([command])
        try:
            sock = self.conn._sock
            head, got, end = _receive_first_line(sock)
            kind, line = head[:1], bytes(head[1:end])
            if kind == b"-":
                if got != end + 2:
                    raise ConnectionError("unexpected bytes after an error reply")
                self.pending = 0
                raise ResponseError(line.decode(errors="replace"))
            if kind == b"_" and line == b"":   # RESP3's null
                if got != end + 2:
                    raise ConnectionError("unexpected bytes after a null reply")
                self.pending = 0
                return None
            if kind != b"$":
                raise ConnectionError(f"expected a bulk string reply, got {bytes(head[:end])!r}")
            n = int(line)
            if n < 0:
                if got != end + 2:
                    raise ConnectionError("unexpected bytes after a nil reply")
                self.pending = 0
                return None
            body = _receive_bulk(sock, n, memoryview(head)[end + 2:got], self.whole_transfers)
            self.pending = 0
            return body
        except ResponseError:
            raise
        except (socket.timeout, BlockingIOError):   # a Python timeout, or the kernel's (:meth:`_kernel_timeouts`)
            self.reset()
            raise TimeoutError("Timeout reading a reply") from None
        except OSError as e:
            self.reset()
            raise ConnectionError(f"Error while reading a reply: {e.args}") from None
        except BaseException:
            self.reset()
            raise

    def call_bulk_first(self, commands: Sequence[tuple], spin_s: float = 0.0) -> list[Any]:
        """One round trip whose first command's reply may be large (a worker's start: input, code, spec, claim).

        The first reply, when it is a bulk string longer than what arrived with its
        header, is received straight into a buffer of its size (as :meth:`get_bulk`);
        anything else - a short string, a null, an error, the bytes of the replies
        after it - is handed to the hiredis parser, which reads the rest as usual.
        Without hiredis (or with replies outstanding) this is :meth:`call`.  A server
        error raises after every reply is read, as :meth:`read` does.
        """
        if self.conn._sock is None and not self.pending:
            self.conn.connect()   # the parser's reader exists once connected
        reader = getattr(self.conn._parser, "_reader", None)
        if self.pending or reader is None or not hasattr(reader, "feed") or reader.has_data():
            return self.call(commands, spin_s)
        self.send(commands)
        try:
            self.spin_for_reply(spin_s)
            first = self._receive_reply_raw(reader)
        except (socket.timeout, BlockingIOError):   # a Python timeout, or the kernel's (:meth:`_kernel_timeouts`)
            self.reset()
            raise TimeoutError("Timeout reading a reply") from None
        except OSError as e:
            self.reset()
            raise ConnectionError(f"Error while reading a reply: {e.args}") from None
        except BaseException:
            self.reset()
            raise
        error: ResponseError | None = None
        try:
            rest = self.read(len(commands) - 1)
        except ResponseError as e:
            error, rest = e, []
        if isinstance(first, ResponseError) or error is not None:
            raise error or first
        return [first, *rest]

    def _receive_reply_raw(self, reader: Any) -> Any:
        """The next reply: a large bulk string into its own buffer, anything else through the parser."""
        sock = self.conn._sock
        head, got, end = _receive_first_line(sock)
        if head[:1] == b"$":
            n = int(bytes(head[1:end]))
            if n >= 0 and got < end + 2 + n + 2:   # the body goes on past what arrived: receive it uncopied
                body = _receive_bulk(sock, n, memoryview(head)[end + 2:got])
                self.pending -= 1
                return body
        reader.feed(head, 0, got)   # the parser reads this reply (and any after it) from these bytes on
        try:
            reply = self.conn.read_response()
        except ResponseError as e:
            reply = e
        self.pending -= 1
        return reply

    def call(self, commands: Iterable[tuple], spin_s: float = 0.0) -> list[Any]:
        """Send ``commands`` and read their replies: one round trip (polled for up to ``spin_s`` first)."""
        commands = list(commands)
        self.send(commands)
        self.spin_for_reply(spin_s)
        return self.read(len(commands))

    def reset(self) -> None:
        """Drop the connection (and any reply still owed on it); the next send reconnects."""
        self.pending = 0
        self.conn.disconnect()

    def close(self) -> None:
        self.reset()


def _receive_first_line(sock: socket.socket) -> tuple[bytearray, int, int]:
    """Receive at least a reply's first line: (buffer, bytes received, index of the line's CRLF)."""
    head = bytearray(_HEAD_READ)
    got = sock.recv_into(head)
    if not got:
        raise ConnectionError("the server closed the connection")
    while b"\r\n" not in head[:got]:
        more = sock.recv_into(memoryview(head)[got:]) if got < len(head) else 0
        if not more:
            raise ConnectionError("a reply header without an end")
        got += more
    return head, got, head.index(b"\r\n", 0, got)


@contextmanager
def blocking(sock: socket.socket, option: int) -> Iterator[None]:
    """``sock`` in blocking mode for the block, its timeout kept as the kernel's ``option`` (``SO_RCVTIMEO``
    or ``SO_SNDTIMEO``), so one call moves a whole payload (or fails after the timeout).

    With a Python timeout a socket is non-blocking and ``sendall``/``recv_into`` poll and move
    one buffer's worth per call, each taking the GIL back: ~150 sends per 32 MB ``SET`` and
    ~150 receives per 32 MB reply here (strace), against 1-3 blocking ones.  A thread that
    moves bytes beside a CPU-bound task waits for the GIL each time (up to the switch
    interval) and makes the task wait for it.
    """
    timeout = sock.gettimeout()
    if timeout is None:   # blocking already, with the kernel's timeouts a :class:`Wire` gave it (or none)
        yield
        return
    seconds = timeout
    sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", int(seconds), int((seconds % 1) * 1e6)))
    sock.settimeout(None)
    try:
        yield
    finally:
        sock.settimeout(timeout)


#: A payload received in one blocking call (``whole``) of at least this many bytes goes into a buffer whose pages
#: are all mapped in one call (:func:`_new_buffer`)
POPULATE_MIN_BYTES = 1 << 20
#: ``mmap``'s flag that maps every page of a new mapping at once (Linux; None elsewhere: a plain buffer then)
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", None)


def _new_buffer(size: int, whole: bool) -> bytearray | mmap.mmap:
    """A zeroed buffer of ``size`` bytes to receive into: with ``whole``, from :data:`POPULATE_MIN_BYTES` on, an
    anonymous mapping whose pages are mapped in one call (``MAP_POPULATE``), else a ``bytearray``.

    A fresh ``bytearray`` of 32 MB takes a page fault per 4 KiB page as it is filled
    (CPython zeroes it first: ~24 ms per 32 MB in a new process on this host's VM) -
    the pre-load thread's main CPU, inside its worker's quota beside the task it runs
    (issue 17, fan-large's gather: 7 x 32 MB).  Populated in one call they cost less:
    fresh process per trial, 7 x 32 MB received by one thread, its CPU 174 ms median
    against 220 ms (10 interleaved trials, load 7).  Only the background receives: the
    worker's own fetches keep their ``bytearray``.
    """
    if whole and size >= POPULATE_MIN_BYTES and _MAP_POPULATE is not None:
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_POPULATE)
    return bytearray(size)


def _receive_bulk(sock: socket.socket, n: int, already: memoryview, whole: bool = False) -> bytearray | memoryview:
    """A bulk string's ``n`` bytes, of which ``already`` came with its header, received into one buffer
    (:func:`_new_buffer`: a ``bytearray``, or a view of ``n`` bytes of a populated mapping).

    ``whole``: in one blocking ``recv(MSG_WAITALL)`` (:func:`blocking`) instead of one call per
    chunk the kernel holds.  Measured beside a 0.6 s CPU-bound thread, 7 x 32 MB: 7 calls instead
    of 1012-1061, the receiving thread's CPU 49-61 ms instead of 102-104 ms, its wall 2-3 times
    shorter.
    """
    body = _new_buffer(n + 2, whole)
    view = memoryview(body)
    have = len(already)
    if have > n + 2:
        raise ConnectionError("unexpected bytes after a bulk reply")
    view[:have] = already
    with blocking(sock, socket.SO_RCVTIMEO) if whole else nullcontext():
        while have < n + 2:
            k = sock.recv_into(view[have:], 0, socket.MSG_WAITALL) if whole else sock.recv_into(view[have:])
            if not k:
                raise ConnectionError("the server closed the connection")
            have += k
    if not isinstance(body, bytearray):
        return view[:n]            # the trailing CRLF left in the mapping (no copy)
    view.release()
    del body[n:]                   # the trailing CRLF (no copy)
    return body
