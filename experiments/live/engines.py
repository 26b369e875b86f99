"""``planlab run CONFIG --live``: the runner's engines, with every real run shown live.

The runner takes its engines as a parameter (:class:`experiments.runner.Engines`), so
the live view needs no hook in it: :func:`watched_engines` wraps them.  The executor
factory yields a :class:`WatchedExecutor`, whose ``run`` goes through
:func:`experiments.live.hub.run_watched` (profiling runs, host-calibration runs and
execute cells alike); ``simulate`` and ``monte_carlo`` are wrapped only to remember,
per plan, the simulated makespan at the SLA the runner puts in the cell's summary
(the Monte Carlo statistic for a percentile SLA, else the deterministic run), so the
page shows the same prediction beside the real run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

from experiments.live.hub import LiveHub, run_watched

__all__ = ["watched_engines", "WatchedExecutor"]


class WatchedExecutor:
    """An executor whose runs the live view shows; everything else is the wrapped executor's."""

    def __init__(self, inner: Any, hub: LiveHub, predictions: dict[int, Callable[[Any], float]]) -> None:
        self._inner = inner
        self._hub = hub
        self._predictions = predictions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def run(self, workflow: Any, plan: Any, run_id: str | None = None, protocol: Any = None,
            measure_contention: bool | None = None) -> Any:
        predict = self._predictions.pop(id(plan), None)
        simulated = predict(plan) if predict is not None else None
        return run_watched(self._hub, self._inner, workflow, plan, run_id=run_id, protocol=protocol,
                           simulated_makespan_s=simulated, label=run_id or "", measure_contention=measure_contention)


def watched_engines(engines: Any, hub: LiveHub, metrics: str | None = None) -> Any:
    """A copy of ``engines`` whose real runs ``hub`` shows (``metrics``: the upload policy when the config names none)."""
    predictions: dict[int, Callable[[Any], float]] = {}
    changes: dict[str, Any] = {}
    if engines.simulate is not None:
        simulate = engines.simulate

        def watched_simulate(workflow: Any, plan: Any, *args: Any, **kwargs: Any) -> Any:
            trace = simulate(workflow, plan, *args, **kwargs)
            predictions[id(plan)] = lambda _plan, value=float(trace.makespan_s): value
            return trace

        changes["simulate"] = watched_simulate
    if engines.monte_carlo is not None:
        monte_carlo = engines.monte_carlo

        def watched_monte_carlo(workflow: Any, plan: Any, *args: Any, **kwargs: Any) -> Any:
            result = monte_carlo(workflow, plan, *args, **kwargs)
            predictions[id(plan)] = lambda p, r=result: float(r.summary(p.sla)["makespan_s"])
            return result

        changes["monte_carlo"] = watched_monte_carlo
    if engines.executor is not None:
        factory = engines.executor

        @contextlib.contextmanager
        def watched_executor(settings: Any) -> Iterator[WatchedExecutor]:
            if metrics and "metrics" not in dict(settings.settings):
                settings = dataclasses.replace(settings, settings={**dict(settings.settings), "metrics": metrics})
            with factory(settings) as executor:
                yield WatchedExecutor(executor, hub, predictions)

        changes["executor"] = watched_executor
    return dataclasses.replace(engines, **changes)
