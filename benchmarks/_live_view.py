"""The live view's cost to the run: per-task overhead on the 1k-task DAGs with the view on and off.

``python benchmarks/bench_executor.py --live-view`` (or ``--live-view-only``, which keeps
the file's other entries) writes the ``live_view`` entry of ``benchmarks/results/executor.json``.

"On" is what ``planlab execute --live`` does: the run's static part (layout, planned
times) is built before submission, the view's server runs in the client's process with
one page connected (an event-stream reader in a separate process, as a browser would
be), the poller reads the run's keys once a second, and the workers upload their rows
every second (``seconds:1``).  "Off" is a plain ``Executor.run``.  On and off alternate
(off first on even repeats, on first on odd ones) on the same warm executor, so they
share the machine's load; the entry has the medians and every run.  Target: the
per-task overhead rises by at most 10 %.

A 1k-task run lasts 0.1-0.4 s, so one poll rarely lands inside it; the entry also
times one poll of a finished 1k-task run whose keys were kept (the worst a poll can
cost the client: every task done, every row uploaded), to show what a poll costs when
it does.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import redis

from experiments.live.hub import LiveHub, run_watched
from experiments.live.reader import RunReader
from experiments.live.server import LiveServer
from experiments.live.session import LIVE_METRICS

TARGET_RISE = 0.10

_PAGE = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=600) as stream:
    for line in stream:
        pass
"""


def bench_live_view(ex: Any, cases: list[tuple[str, str, Any, Any, float]], repeats: int) -> dict[str, Any]:
    """``cases``: (dag, placement, workflow, plan, local_s).  Medians of ``repeats`` interleaved on/off runs."""
    load_start = os.getloadavg()
    hub = LiveHub()
    server = LiveServer(hub).start()
    page = subprocess.Popen([sys.executable, "-c", _PAGE, server.url + "api/events"])
    plain = ex.settings
    live = dataclasses.replace(plain, metrics=LIVE_METRICS)
    rows = []
    try:
        for dag, placement, wf, plan, local_s in cases:
            def off() -> float:
                return ex.run(wf, plan).makespan_s

            def on() -> float:
                ex.settings = live
                try:
                    return run_watched(hub, ex, wf, plan).makespan_s
                finally:
                    ex.settings = plain

            off(), on()   # warm-up
            spans: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(repeats):
                order: list[tuple[str, Callable[[], float]]] = [("off", off), ("on", on)]
                for name, run in (order if r % 2 == 0 else order[::-1]):
                    spans[name].append(run())
            per_task = {k: [(s - local_s) / len(wf) * 1e3 for s in v] for k, v in spans.items()}
            off_ms, on_ms = statistics.median(per_task["off"]), statistics.median(per_task["on"])
            rows.append({"dag": dag, "placement": placement, "tasks": len(wf), "local_s": local_s,
                         "off_makespan_s": statistics.median(spans["off"]),
                         "on_makespan_s": statistics.median(spans["on"]), "off_ms_per_task": off_ms,
                         "on_ms_per_task": on_ms,
                         # None when the local time exceeded the runs' under load: no overhead to compare against
                         "rise": (on_ms - off_ms) / off_ms if off_ms > 0 else None,
                         "off_runs_ms_per_task": per_task["off"], "on_runs_ms_per_task": per_task["on"]})
            print(f"live view {dag:>7} {len(wf):>6} tasks {placement:<22} off {off_ms:.3f} on {on_ms:.3f} ms/task "
                  f"({'n/a' if rows[-1]['rise'] is None else format(rows[-1]['rise'], '+.1%')})", flush=True)
        poll = _poll_cost(ex, cases[-1][2], cases[-1][3])
    finally:
        page.terminate()
        page.wait(5)
        server.close()
    worst = max((r["rise"] for r in rows if r["rise"] is not None), default=float("nan"))
    return {"target_rise": TARGET_RISE, "worst_rise": worst, "pass": worst <= TARGET_RISE, "repeats": repeats,
            "page": "one event-stream client (a separate process) connected throughout",
            "load_average_start": load_start, "load_average_end": os.getloadavg(), "rows": rows, "poll": poll}


def _poll_cost(ex: Any, wf: Any, plan: Any, polls: int = 20) -> dict[str, Any]:
    """Client-side time of one poll of a finished run with every key kept (median of ``polls``)."""
    kept = dataclasses.replace(ex.settings, keep_keys=True, metrics="task")
    plain, ex.settings = ex.settings, kept
    try:
        result = ex.run(wf, plan)
    finally:
        ex.settings = plain
    run_id = result.meta["run_id"]
    client = redis.Redis.from_url(ex.url)
    times = []
    try:
        client.set(f"pl:{{{run_id}}}:live", "1", px=int(kept.key_ttl_s * 1000))   # as if still running
        for _ in range(polls):
            reader = RunReader(client, run_id, ex.secret, kept.key_ttl_s)
            t = time.perf_counter()
            obs = reader.poll()
            times.append(time.perf_counter() - t)
        assert obs is not None and len(obs.done) == len(wf) and len(obs.rows) == len(wf)
    finally:
        for key in client.scan_iter(match=f"pl:{{{run_id}}}:*", count=1000):
            client.unlink(key)
        client.close()
    return {"tasks": len(wf), "poll_ms_median": statistics.median(times) * 1e3, "polls": polls,
            "note": "reads the done and running hashes, the claims, every uploaded row, attempts and error"}
