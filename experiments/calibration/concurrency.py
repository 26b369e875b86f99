"""How many other recorded executions ran at the same time as each one: a covariate the calibration cannot see.

A WfFormat execution records when it started (``executedAt``) and its makespan, so
the executions of a corpus can be laid on one clock.  Some overlapped: WfInstances'
seismology sizes 300p and 400p started 21 s apart, 500p and 600p 10 s apart, and
700p to 1000p each ran beside two or three others on the same Chameleon cluster;
blast's small-002 and small-003 started 31 s apart.  Executions that shared their
workflow system's submit host and machines with others paid more per task
(seismology: 1.2-1.7 s of overhead per task beside one other run, 2.0-2.7 s beside
two or three; blast small-003, beside small-002, took twice its siblings' makespan).
The replay of one execution knows nothing of the others, so this is scatter no
calibrated term of a single workflow can explain - measured here so a report can say
how much of an application's error sits on overlapped runs
(``benchmarks/bench_calibration.py``).

What a prediction may use is narrower (:func:`running_at_start`): how many other runs were
*already running when it was submitted* - known at its start, unlike its own end or the runs
submitted after it.  ``calibrate(background_runs=...)`` takes that count as the run's
``Platform.background_runs`` (each costs ``background_dispatch_s`` per task, fitted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import numpy as np


def started_at(workflow: Any) -> float | None:
    """The execution's recorded start as seconds since the epoch (``executedAt``: ISO 8601, basic or extended
    form), or None when the file has none or it cannot be read."""
    text = (getattr(workflow, "metadata", None) or {}).get("executed_at")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def others_running(spans: Sequence[tuple[float | None, float]]) -> np.ndarray:
    """Per execution given as ``(start, makespan)``, the mean number of the *other* executions running during its
    makespan (the overlapped seconds summed over the others, divided by its makespan); NaN when its start is unknown.

    Two runs of 100 s, the second started 50 s after the first: 0.5 each."""
    out = np.full(len(spans), np.nan)
    for i, (start, length) in enumerate(spans):
        if start is None or not length > 0:
            continue
        end = start + length
        shared = sum(max(0.0, min(end, s + m) - max(start, s))
                     for j, (s, m) in enumerate(spans) if j != i and s is not None and m > 0)
        out[i] = shared / length
    return out


def concurrency(observations: Sequence[Any]) -> dict[str, float]:
    """Per observation name, :func:`others_running` among the given observations (its real makespan as its span)."""
    values = others_running([(started_at(o.workflow), float(o.real_makespan_s)) for o in observations])
    return {o.name: float(v) for o, v in zip(observations, values)}


def running_at_start(spans: Sequence[tuple[float | None, float]], known: Sequence[bool] | None = None) -> np.ndarray:
    """Per execution given as ``(start, makespan)``, how many *other* executions were already running when it
    started: started at or before it and not yet finished (``start_j <= start_i < start_j + makespan_j``); 0 when
    its start is unknown.  ``known`` (default all): which executions may be counted - a leave-one-out fit passes
    False for the held-out ones, whose end must not reach the training runs' counts.

    What is known when a run is submitted: the others' starts and whether they are still running, never its own
    end.  Two runs of 100 s, the second started 50 s after the first: 0 and 1."""
    known = [True] * len(spans) if known is None else list(known)
    out = np.zeros(len(spans))
    for i, (start, _) in enumerate(spans):
        if start is None:
            continue
        out[i] = sum(1 for j, (s, m) in enumerate(spans)
                     if j != i and known[j] and s is not None and m > 0 and s <= start < s + m)
    return out


def background_runs(observations: Sequence[Any], held_out: Sequence[Any] = ()) -> dict[str, float]:
    """Per observation name, :func:`running_at_start` among the given observations: the ``held_out`` ones (a
    leave-one-out fold's) count in nobody's background but their own counts see every other observation."""
    held = {id(o) for o in held_out}
    spans = [(started_at(o.workflow), float(o.real_makespan_s)) for o in observations]
    everyone = running_at_start(spans)
    visible = running_at_start(spans, [id(o) not in held for o in observations])
    return {o.name: float(everyone[i] if id(o) in held else visible[i]) for i, o in enumerate(observations)}
