"""The runs the page can show, and the thread that polls the running ones about once a second.

One :class:`LiveHub` per command: ``planlab execute --live`` adds its one run,
``planlab run --live`` every real run of the experiment as it starts (the page
follows the newest), ``planlab view`` the saved runs of a results folder.  The
poller reads each running run's records (:class:`experiments.live.reader.RunReader`,
its own connection) and folds them into the run's :class:`RunState`; each change
renders the run's JSON once, whatever the number of pages open, and bumps the
run's version, which the page's event stream watches.

:func:`run_watched` is how a command runs a plan under the view: the run's static
part is computed and registered *before* submission, the run itself is the
executor's, and its Trace becomes the page's final state - so the page's makespan
is the client's, to the bit.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from experiments.live.reader import RunReader
from experiments.live.runplan import RunPlan
from experiments.live.state import RunState
from planning.errors import PlanlabError

__all__ = ["LiveHub", "run_watched"]


@dataclass
class _Entry:
    plan: RunPlan
    state: RunState
    reader: RunReader | None = None
    version: int = 0
    rendered: tuple[int, str] = (-1, "")
    plan_json: str = ""


class LiveHub:
    """Runs by id (in the order they started), the newest one, and the 1 Hz poller."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._runs: dict[str, _Entry] = {}
        self.newest: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams: dict[int, tuple[str, int]] = {}     # open event streams: what each last sent
        self._delivered: dict[str, int] = {}                # run -> the latest version any stream sent

    # ------------------------------------------------------------------ runs
    def begin(self, plan: RunPlan, reader: RunReader | None = None) -> None:
        """A run about to be submitted; the poller reads it from now on."""
        with self._lock:
            self._runs[plan.run_id] = _Entry(plan, RunState(plan), reader,
                                             plan_json=json.dumps(plan.to_dict(), allow_nan=False))
            self.newest = plan.run_id
        self._start_poller()
        self._wake.set()

    def add_finished(self, plan: RunPlan, trace: Any) -> None:
        """A run that is already over (``planlab view``)."""
        self.begin(plan)
        self.finish(plan.run_id, trace)

    def finish(self, run_id: str, trace: Any) -> None:
        """The client's Trace: the run's final state."""
        with self._lock:
            entry = self._runs[run_id]
            entry.state.finish(trace)
            entry.version += 1
            self._close_reader(entry)

    def fail(self, run_id: str, message: str) -> None:
        with self._lock:
            entry = self._runs[run_id]
            entry.state.fail(message)
            entry.version += 1
            self._close_reader(entry)

    @staticmethod
    def _close_reader(entry: _Entry) -> None:
        if entry.reader is not None:
            with contextlib.suppress(Exception):
                entry.reader.r.close()
            entry.reader = None

    # ------------------------------------------------------------------ what the server serves
    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"run_id": rid, "label": e.plan.label, "status": e.state.status, "workflow": e.plan.workflow,
                     "planner": e.plan.planner, "sla": e.plan.sla} for rid, e in self._runs.items()]

    def plan_json(self, run_id: str | None) -> str | None:
        with self._lock:
            entry = self._runs.get(run_id or self.newest or "")
            return entry.plan_json if entry else None

    def snapshot(self, run_id: str | None) -> tuple[str, int, str] | None:
        """(run id, version, JSON) of ``run_id`` (the newest run when None); rendered once per version."""
        with self._lock:
            rid = run_id or self.newest
            entry = self._runs.get(rid or "")
            if entry is None:
                return None
            if entry.rendered[0] != entry.version:
                entry.rendered = (entry.version, json.dumps(entry.state.snapshot(), allow_nan=False))
            return rid, entry.version, entry.rendered[1]

    def stream_sent(self, stream: int, run_id: str, version: int) -> None:
        """An event stream sent this version (so :meth:`wait_delivered` knows what the pages have)."""
        with self._lock:
            self._streams[stream] = (run_id, version)
            self._delivered[run_id] = max(version, self._delivered.get(run_id, -1))

    def stream_closed(self, stream: int) -> None:
        with self._lock:
            self._streams.pop(stream, None)

    def delivered(self) -> bool:
        """Some page has been sent the newest run's latest state, and no open page is behind."""
        with self._lock:
            newest = self._runs.get(self.newest or "")
            if newest is not None and self._delivered.get(self.newest, -1) < newest.version:
                return False
            return all(rid not in self._runs or v >= self._runs[rid].version for rid, v in self._streams.values())

    def wait_delivered(self, timeout_s: float) -> bool:
        """Wait until :meth:`delivered` (or ``timeout_s``): a page opened late still gets the run's end."""
        deadline = time.monotonic() + timeout_s
        while not self.delivered():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # ------------------------------------------------------------------ the poller
    def _start_poller(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, name="planlab-live-poller", daemon=True)
            self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            with self._lock:
                active = [(rid, e.reader) for rid, e in self._runs.items() if e.reader is not None]
            for rid, reader in active:
                try:
                    obs = reader.poll()
                except Exception:   # noqa: BLE001 - a server gone mid-run: the client reports it, the page waits
                    continue
                if obs is None:
                    continue
                with self._lock:
                    entry = self._runs[rid]
                    if entry.reader is reader:     # not finished meanwhile: the Trace has the last word
                        entry.state.observe(obs)
                        entry.version += 1

    def close(self) -> None:
        """Stop the poller and every reader."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for entry in self._runs.values():
                self._close_reader(entry)


def run_watched(hub: LiveHub, executor: Any, workflow: Any, plan: Any, *, run_id: str | None = None,
                protocol: Any = None, simulated_makespan_s: float | None = None, label: str = "",
                measure_contention: bool | None = None) -> Any:
    """``executor.run(...)`` shown live: registered before submission, its Trace the page's final state."""
    import redis

    run_id = run_id or uuid.uuid4().hex[:12]
    hub.begin(RunPlan.of(workflow, plan, run_id, simulated_makespan_s=simulated_makespan_s, label=label),
              RunReader(redis.Redis.from_url(executor.url, socket_timeout=5.0), run_id, executor.secret,
                        executor.settings.key_ttl_s))
    options: dict[str, Any] = {"protocol": protocol} if protocol is not None else {}
    if measure_contention is not None:
        options["measure_contention"] = measure_contention
    try:
        result = executor.run(workflow, plan, run_id=run_id, **options)
    except PlanlabError as exc:
        hub.fail(run_id, exc.one_line())
        raise
    except BaseException as exc:
        hub.fail(run_id, f"stopped: {type(exc).__name__}")
        raise
    hub.finish(run_id, result.trace)
    return result
