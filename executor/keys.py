"""Key names on the coordination server, in one place.

A run's keys share the prefix ``pl:{RUN}:`` so cleanup is one ``SCAN MATCH``; the
braces make a Redis Cluster keep one run's keys in one slot (the completion
script touches several).  Every run has its own launch queue, so launchers of
concurrent runs never take each other's work; a pool's registry of live runs
tells ``planlab agent`` launchers which queues to serve.  Worker-process inboxes,
idle lists and control lists belong to a launcher (warm processes outlive runs).
Every key carries a TTL from its creation (``ExecutorSettings.key_ttl_s`` for a
run's keys), so a killed client or launcher leaves nothing behind for good.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunKeys", "pool_runs", "launcher_alive", "launcher_control", "process_inbox", "process_inbox_parts",
           "idle_list", "process_pool_key", "launcher_handed", "PROCESS_KEY_SLACK_S", "inbox_item", "read_inbox_item",
           "BY_LAUNCHER", "BY_COMPLETION"]


#: Process inboxes, idle lists and hand-off notices expire when nobody renews them for this long beyond keep-alive.
PROCESS_KEY_SLACK_S = 60.0


def pool_runs(pool: str) -> str:
    """Set of the live runs whose launch queues the pool's agents serve."""
    return f"pl:pool:{pool}:runs"


def launcher_alive(launcher_id: str) -> str:
    """A launcher's heartbeat (expires when the launcher is gone)."""
    return f"pl:launcher:{launcher_id}"


def launcher_control(launcher_id: str) -> str:
    """Control messages (cancel a run, stop) for one launcher; popped before the launch queue."""
    return f"pl:ctl:{launcher_id}"


def process_inbox(launcher_id: str, pid: int) -> str:
    """Assignments for one warm worker process (in its launcher's hash slot: :func:`process_inbox_parts`)."""
    prefix, suffix = process_inbox_parts(launcher_id)
    return f"{prefix}{pid}{suffix}"


#: Who put a start on a warm process's inbox: its launcher, or a completion (the commit script's ``H`` op).
BY_LAUNCHER, BY_COMPLETION = "launcher", "completion"
_VIA_TAGS = {b"L": BY_LAUNCHER, b"H": BY_COMPLETION}


def inbox_item(run: str, via: str, blob: bytes) -> bytes:
    """A start on a process inbox: ``run\\nTAG\\nblob`` (TAG ``L`` or ``H``, the sealed start message after it).
    The process records who handed it the start in its worker row (``start_via``): the trace then counts
    the starts completions handed straight to idle processes without watching the server."""
    return f"{run}\n{'H' if via == BY_COMPLETION else 'L'}\n".encode() + blob


def read_inbox_item(item: bytes) -> tuple[str, str, bytes]:
    """(run, who handed it, sealed start message) of an inbox item (:func:`inbox_item`).

    The item comes off the server: one that is not ``run\\nL|H\\nstart`` raises ValueError (the process then
    exits, as it does for a start message whose seal does not verify), never a KeyError from deep inside."""
    parts = item.split(b"\n", 2)
    if len(parts) != 3 or parts[1] not in _VIA_TAGS:
        raise ValueError("a malformed process inbox item: expected run\\nL|H\\nsealed start")
    return parts[0].decode(errors="replace"), _VIA_TAGS[parts[1]], parts[2]


def process_inbox_parts(launcher_id: str) -> tuple[str, str]:
    """A process inbox's name around its pid.  The ``{LAUNCHER}`` hash tag at the end puts every inbox and idle
    list of a launcher in one slot, so the hand-off script (idle list -> inbox) runs on a Redis Cluster too."""
    return f"pl:proc:{launcher_id}:", f"{{{launcher_id}}}"


def idle_list(launcher_id: str, profile: str) -> str:
    """Pids of this launcher's idle processes of ``profile`` (the warm pool; the launcher's hash slot)."""
    return f"pl:idle:{launcher_id}:{profile}{{{launcher_id}}}"


def process_pool_key(msg: dict) -> str:
    """Which warm processes may serve a start message: the same profile, CPUs, memory, threads and limits
    switch (a process stays in its profile's cgroups).  Names its idle list: :func:`idle_list`."""
    return (f"{msg['profile']}|{msg.get('cpus')}|{msg.get('memory_mb')}|{msg.get('threads')}|"
            f"{int(bool(msg.get('limits')))}")


def launcher_handed(launcher_id: str) -> str:
    """Starts a completion handed straight to one of this launcher's idle processes (the pid, the run and the start,
    one per line), for the launcher to record what the process serves (``ProcessPool.handed``); its hash slot."""
    return f"pl:handed:{launcher_id}{{{launcher_id}}}"


@dataclass(frozen=True)
class RunKeys:
    """Every key of one run."""

    run_id: str

    @property
    def prefix(self) -> str:
        return f"pl:{{{self.run_id}}}:"

    def _k(self, name: str) -> str:
        return self.prefix + name

    @property
    def live(self) -> str:
        """Exists while the run is live; workers of a cancelled run stop when it is gone."""
        return self._k("live")

    @property
    def protocol(self) -> str:
        """The pickled worker protocol over the code-less workflow (stored once)."""
        return self._k("protocol")

    def subdag(self, worker: str) -> str:
        """A worker's sub-DAG (code and arguments of its tasks) when too large to inline."""
        return self._k(f"sub:{worker}")

    def const(self, digest: str) -> str:
        return self._k(f"const:{digest}")

    @property
    def launch(self) -> str:
        """This run's start invocations (only launchers serving the run pop it)."""
        return self._k("launch")

    @property
    def done(self) -> str:
        """Hash: task -> completion number; a task's completion commits here exactly once."""
        return self._k("done")

    @property
    def claims(self) -> str:
        """Hash: ``worker#generation`` -> process; a start message is served by one process only."""
        return self._k("claims")

    @property
    def taken(self) -> str:
        """Hash: ``worker#generation`` -> the launcher that took that start from the launch queue (its ack): the
        client's watchdog tells a start a live launcher works on from one lost (:mod:`executor.run.first_starts`)."""
        return self._k("taken")

    @property
    def deps(self) -> str:
        """Hash: task -> parents not yet done (only tasks with several parents)."""
        return self._k("deps")

    def out(self, task_id: str) -> str:
        return self._k(f"out:{task_id}")

    @property
    def reads(self) -> str:
        """Hash: task -> completed reads of its stored output (per-task output retention deletes it at the last)."""
        return self._k("reads")

    def inbox(self, worker: str) -> str:
        """Notifications for a logical worker (task ids made ready for it)."""
        return self._k(f"inbox:{worker}")

    def preload_wake(self, worker: str) -> str:
        """Wake-ups for a logical worker's pre-load thread: a commit pushes the task whose output it stored (or
        the worker a stop sentinel) and the thread, blocked on the list, fetches it (:mod:`executor.worker_preload`)."""
        return self._k(f"wake:{worker}")

    def lease(self, worker: str) -> str:
        return self._k(f"lease:{worker}")

    @property
    def running(self) -> str:
        """Hash: logical worker -> ``launcher_id:pid`` while it runs."""
        return self._k("running")

    @property
    def events(self) -> str:
        """What the client waits on (blocking pop): sinks done, errors, deaths (finished workers: :attr:`finished`)."""
        return self._k("events")

    @property
    def finished(self) -> str:
        """Logical workers that finished (``w|worker``): the client reads them only once every result is in,
        so a worker finishing mid-run wakes nobody (on the hand-off's critical path, the client's wake-up
        took a CPU from the started worker)."""
        return self._k("finished")

    @property
    def error(self) -> str:
        """The final error of a failed run (task, worker, traceback)."""
        return self._k("error")

    @property
    def attempts(self) -> str:
        """Hash: task -> traceback of its last failed attempt (written in a transaction)."""
        return self._k("attempts")

    @property
    def acks(self) -> str:
        return self._k("acks")

    @property
    def metrics(self) -> str:
        """List of metric batches; the one key kept after the run."""
        return self._k("metrics")
