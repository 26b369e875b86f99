"""The launcher's main loop: which runs' launch queues it serves, its control messages, and shutdown.

A launcher serves the launch queues of the runs it is told about - an
executor's local launcher only its own executor's runs (a ``serve`` control
message per run), a ``planlab agent`` every live run of its pool (the pool's
registry of runs) - so concurrent runs on one server never take, or kill, each
other's workers.  Control messages (serve a run, cancel a failed run: kill its
processes; stop) come through a per-launcher list popped before the launch
queues.  Every message is authenticated before it is unpickled
(:mod:`executor.auth`); each start goes to the process pool (:mod:`.pool`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable

import redis

from executor import keys
from executor.auth import Forged, RunSealer
from executor.server.cluster import blocking_pop
from executor.server.urls import client_from_url
from executor.launcher.pool import ProcessPool
from executor.launcher.warm_process import die_with_parent, preload_for_workers
from executor.limits import ResourceLimiter, cleanup_stale_cgroups
from executor.messages import control_sealer, decode_control, decode_start

__all__ = ["Launcher", "new_launcher_id", "run_launcher"]

#: Socket timeout of every executor connection; blocking pops always ask for less.
SOCKET_TIMEOUT_S = 30.0
#: A launcher's heartbeat key lives this long (renewed every loop of at most 0.2 s).
LAUNCHER_TTL_S = 5.0
#: How often an agent re-reads its pool's runs, and any launcher drops runs that ended.
REFRESH_S = 0.5
#: Starts taken with a run's ``serve`` message, before the loop's next housekeeping.
TAKEN_WITH_SERVE = 8
#: How often the loop reads the notices of starts completions handed to its idle processes themselves.
#: Not a blocking pop: waking the launcher then would take a CPU from the process just handed its start.
HANDED_EVERY_S = 0.1


def new_launcher_id() -> str:
    """A launcher id unique across hosts and restarts: host, pid, random suffix."""
    return f"{socket.gethostname()[:20]}-{os.getpid()}-{secrets.token_hex(3)}"


class Launcher:
    """Serves launch queues on this host.  ``run()`` until a ``stop`` control message.

    ``serve_pool``: serve every live run registered in ``pool`` (a ``planlab agent``);
    otherwise only the runs named by ``serve`` control messages (an executor's own launcher).
    """

    def __init__(self, url: str, secret: bytes, *, pool: str = "default", launcher_id: str | None = None,
                 limiter: ResourceLimiter | None = None, serve_pool: bool = False) -> None:
        self.url = url
        self.pool = pool
        self.id = launcher_id or new_launcher_id()
        self.client = client_from_url(url, socket_timeout=SOCKET_TIMEOUT_S)
        self._secret = secret
        self._ctl = control_sealer(secret, self.id)
        self._sealers: dict[str, RunSealer] = {}
        self.serve_pool = serve_pool
        self.runs: dict[str, float] = {}          # run -> when it was added
        self.host = socket.gethostname()
        self.processes = ProcessPool(self.client, url, self.id, secret, self.host, limiter)
        self.processes.record_handed = self.record_handed
        self._refreshed = 0.0
        self._handed_read = 0.0

    @property
    def limiter(self) -> ResourceLimiter:
        return self.processes.limiter

    def sealer(self, run: str) -> RunSealer:
        if run not in self._sealers:
            self._sealers[run] = RunSealer(self._secret, run)
        return self._sealers[run]

    # ------------------------------------------------------------------ main loop
    def run(self, stop: threading.Event | None = None) -> None:
        control = keys.launcher_control(self.id)
        try:
            while stop is None or not stop.is_set():
                self._housekeeping()
                queues = [control, *(keys.RunKeys(r).launch for r in self.runs)]
                item = blocking_pop(self.client, queues, 0.2)   # (a Redis Cluster: per slot)
                if item is None:
                    continue
                key = item[0].decode()
                if key == control:
                    if self._control(item[1]) == "stop":
                        break
                else:
                    self._start_from(key[len("pl:{"):key.index("}")], item[1])
        finally:
            self.shutdown()

    def _housekeeping(self) -> None:
        self.processes.reap()
        now = time.monotonic()
        if now - self._handed_read >= HANDED_EVERY_S:
            self._handed_read = now
            self.take_handed()
        self.processes.check_children()
        self.processes.renew_leases()
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_S:
            self._refreshed = now
            self._refresh_runs()

    def _control(self, blob: bytes) -> str:
        try:
            msg = decode_control(self._ctl, blob)
        except Forged as exc:
            print(f"planlab launcher {self.id}: ignored a control message: {exc.one_line()}", file=sys.stderr)
            return "forged"
        if msg["type"] == "serve":
            self.runs.setdefault(msg["run"], time.monotonic())
            self._take_starts(msg["run"])
        elif msg["type"] == "cancel":
            self.cancel(msg["run"], msg.get("pids", []))
        return msg["type"]

    def _take_starts(self, run: str) -> None:
        """Start what a run queued with its ``serve`` message (the client writes both in one round trip).

        Taken at once: waiting for them in the next loop cost its housekeeping and another
        blocking pop, ~3 ms of a cold start at load 6.  At most :data:`TAKEN_WITH_SERVE`
        (each may fork: the loop's housekeeping - reaping, leases - must not wait long);
        the rest, and what is not queued yet, the loop pops as usual.
        """
        for blob in self.client.lpop(keys.RunKeys(run).launch, TAKEN_WITH_SERVE) or ():
            self._start_from(run, blob)

    def _start_from(self, run: str, blob: bytes) -> None:
        try:
            msg = decode_start(self.sealer(run), blob)
        except (Forged, ValueError) as exc:
            # Never unpickled.  Tell the run (plain text: nothing to unpickle) so its client fails clearly.
            text = exc.one_line() if isinstance(exc, Forged) else str(exc)
            print(f"planlab launcher {self.id}: refused a start message of run {run}: {text}", file=sys.stderr)
            with contextlib.suppress(redis.RedisError):
                events = keys.RunKeys(run).events
                self.client.rpush(events, f"a|{self.id} on {self.host}")
                self.client.expire(events, 3600)
            return
        self._acknowledge(run, msg)
        self.processes.start(msg, blob)

    def _acknowledge(self, run: str, msg: dict) -> None:
        """Record that this launcher took ``msg`` (``worker#generation``) from the run's launch queue.

        Between this pop and the worker's claim the start exists only in this launcher: if it
        dies there (its worker processes die with it), nothing else would tell the run.  With
        the ack the client's watchdog knows whom to watch - while this launcher's liveness key
        lives it waits however long the start takes (a cold start behind a fan-out on a loaded
        host), once it is gone it starts the worker again (:mod:`executor.run.first_starts`).
        One round trip per start taken from the queue (none on a completion's hand-off).
        """
        k = keys.RunKeys(run)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(k.taken, f"{msg['worker']}#{int(msg.get('gen', 0))}", self.id)
        pipe.expire(k.taken, int(msg.get("ttl_s") or 86400))
        pipe.execute()

    def take_handed(self) -> None:
        """Record the starts completions handed to this launcher's idle processes since the last read (the
        pool's own hand-offs take those waiting with them, :data:`executor.launcher.pool.HANDOFF_LUA`)."""
        self.record_handed(self.client.lpop(keys.launcher_handed(self.id), 1000) or ())

    def record_handed(self, notices: Iterable[bytes]) -> None:
        """Record starts completions handed to this launcher's idle processes (the pid, the run and the start,
        one per line), oldest first.

        Each is authenticated before it is unpickled, like a start from a launch queue; the
        pool assigns it to the process, or - when the process is gone - starts it again or
        reports the death (:meth:`ProcessPool.handed`).
        """
        for item in notices:
            pid, run, blob = item.split(b"\n", 2)
            run = run.decode()
            try:
                msg = decode_start(self.sealer(run), blob)
            except (Forged, ValueError) as exc:
                text = exc.one_line() if isinstance(exc, Forged) else str(exc)
                print(f"planlab launcher {self.id}: refused a handed start of run {run}: {text}", file=sys.stderr)
                continue
            self.processes.handed(int(pid), msg, blob)

    def _refresh_runs(self) -> None:
        """Agents learn their pool's new runs; every launcher forgets runs that are over."""
        if self.serve_pool:
            for run in self.client.smembers(keys.pool_runs(self.pool)):
                self.runs.setdefault(run.decode(), time.monotonic())
        self.client.set(keys.launcher_alive(self.id), self.pool, px=int(LAUNCHER_TTL_S * 1000))
        if not self.runs:
            return
        names = list(self.runs)
        pipe = self.client.pipeline(transaction=False)
        for run in names:
            pipe.exists(keys.RunKeys(run).live)
        for run, live in zip(names, pipe.execute()):
            if not live and time.monotonic() - self.runs[run] > REFRESH_S:
                del self.runs[run]
                self._sealers.pop(run, None)
                if self.serve_pool:
                    self.client.srem(keys.pool_runs(self.pool), run)   # sweep a run whose client is gone

    # ------------------------------------------------------------------ cancels and the end
    def cancel(self, run: str, pids: list[int]) -> None:
        """Kill this launcher's processes serving ``run`` (a failed run), then acknowledge."""
        self.runs.pop(run, None)
        self.processes.kill_serving(run, pids)
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(keys.RunKeys(run).acks, self.id)
        pipe.expire(keys.RunKeys(run).acks, 30)  # a late ack (the client gave up waiting) expires
        pipe.execute()

    def shutdown(self) -> None:
        """Kill every worker process, release every cgroup, leave no key of this launcher behind."""
        self.processes.kill_all()
        with contextlib.suppress(redis.RedisError):
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(keys.launcher_alive(self.id))
            for key in self.client.scan_iter(match=f"pl:idle:{self.id}:*", count=1000):
                pipe.delete(key)
            for key in self.client.scan_iter(match=f"pl:proc:{self.id}:*", count=1000):
                pipe.delete(key)
            pipe.delete(keys.launcher_control(self.id))
            pipe.delete(keys.launcher_handed(self.id))
            pipe.execute()
        with contextlib.suppress(Exception):
            self.client.close()


def run_launcher(url: str, secret: bytes, pool: str = "default", launcher_id: str | None = None,
                 parent_death: bool = False, serve_pool: bool = False) -> None:
    """Entry point of a launcher process (the executor's local one, or ``planlab agent``)."""
    if parent_death:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload_for_workers()
    launcher = Launcher(url, secret, pool=pool, launcher_id=launcher_id, serve_pool=serve_pool)
    with contextlib.suppress(Exception):
        cleanup_stale_cgroups(launcher.limiter.support)
    try:
        launcher.run()
    except redis.ConnectionError:
        pass  # the server is gone: shutdown() already ran
    finally:
        sys.stdout.flush()
