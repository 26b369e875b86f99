"""The runner's host calibration: a few real runs after the profile phase fit the platform to this machine.

The profile phase measures what each task costs on each profile (one worker at a
time, for the cost model); it cannot see what the host adds when many workers
start and run at once.  So, right after it, the runner makes :data:`RUNS_PER_WORKFLOW`
real runs of every workflow with a fan-out plan (``uniform`` on the catalog's
reference profile, one worker per chain) on the same executor, and fits the
platform's host terms (:data:`experiments.calibration.trace_calibration.HOST_TERMS` plus
``host_background``, the CPU the client, the server and other users take) to
them with :func:`experiments.calibration.trace_calibration.calibrate_on_runs`.  Every simulated
cell then predicts with that platform on this host (``host_cores``), from the
warm pool the executor holds when the cell starts (:class:`WarmPool`).

The platform is saved in the results folder (``platform.toml``, with the fit's
summary in ``host_calibration.json``), so a resumed run predicts with the same one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from planning.costs.cost_model import CostModel
from planning.errors import PlanlabError
from planning.planners import get_planner
from planning.profiles import Catalog
from planning.sla import SLA

if TYPE_CHECKING:   # (the simulator and scipy.optimize are imported only when a calibration runs)
    from simulator.platform import Platform
    from experiments.calibration.trace_calibration import HostCalibration

__all__ = ["RUNS_PER_WORKFLOW", "FITTED_TERMS", "WarmPool", "reference_profile", "calibrate_host"]

#: Real runs per workflow for the fit: the first starts from the pool the profile phase left, the next warmer.
RUNS_PER_WORKFLOW = 2
#: What the runner fits: every host term (:data:`experiments.calibration.trace_calibration.HOST_TERMS`, named here so that
#: importing the runner does not import the simulator).
FITTED_TERMS = ("cold_start_s", "warm_start_s", "launch_s", "process_start_s", "spec_load_s",
                "spec_load_s_per_task", "host_background")


@dataclass
class WarmPool:
    """The idle worker processes per profile the executor holds between runs.

    Every process a run forks (a cold start) stays in the executor's pool, idle, for
    ``keep_alive_s`` after its last logical worker; the next run starts warm on them.
    A run starting later than that after the previous one finds them gone (a
    simplification: processes left idle early in a run expire earlier).
    """

    keep_alive_s: float = 30.0
    idle: dict[str, int] = field(default_factory=dict)
    _last: float | None = None

    def now(self) -> dict[str, int]:
        """The pool a run starting now finds (a copy)."""
        if self._last is not None and time.monotonic() - self._last > self.keep_alive_s:
            self.idle.clear()
        return dict(self.idle)

    def after(self, trace: Any) -> None:
        """Account for a finished real run: the processes it forked join the pool."""
        from experiments.calibration.trace_calibration import processes_started

        self.now()       # (expire what the run found, if it came too late)
        for profile, started in processes_started(trace).items():
            self.idle[profile] = self.idle.get(profile, 0) + started
        self._last = time.monotonic()


def reference_profile(catalog: Catalog) -> str:
    """The profile the calibration runs use: the one closest to one CPU (ties: cheaper)."""
    return min(catalog, key=lambda p: (abs(p.cpus - 1.0), p.price_per_s)).name


def calibrate_host(workflows: dict[str, Any], catalog: Catalog, cost_model: CostModel, executor: Any,
                   pool: WarmPool, *, progress: Callable[[str], None] | None = None,
                   base: Platform | None = None) -> HostCalibration:
    """Run every workflow :data:`RUNS_PER_WORKFLOW` times for real and fit the host terms on those runs.

    ``workflows`` maps labels to :class:`~planning.workflow.Workflow` values; ``pool``
    is updated as runs finish.  ``base`` (default: the cost model's platform on this
    host) supplies every term not fitted.
    """
    from simulator.platform import Platform
    from experiments.calibration.trace_calibration import ObservedRun, calibrate_on_runs

    profile = reference_profile(catalog)
    base = base if base is not None else Platform.from_cost_model(cost_model, "mean").with_(
        host_cores=Platform.for_local_host().host_cores, keep_alive_s=pool.keep_alive_s)
    runs: list[ObservedRun] = []
    for label, workflow in workflows.items():
        try:
            plan = get_planner("uniform", profile=profile).plan(workflow, catalog, cost_model, SLA.parse("mean"))
        except PlanlabError:   # e.g. a task needs more memory than the reference profile has
            continue
        for repetition in range(RUNS_PER_WORKFLOW):
            run_id = f"calibrate.{label}.r{repetition}".replace("/", "_")
            if progress is not None:
                progress(run_id)
            starting_pool = pool.now()
            trace = executor.run(workflow, plan, run_id=run_id).trace
            pool.after(trace)
            runs.append(ObservedRun(workflow, plan, cost_model, trace, warm_pool=starting_pool, name=run_id))
    if not runs:
        raise PlanlabError("no workflow could run on the reference profile for the host calibration",
                           f"give profile {profile!r} enough memory, or set [simulate] platform to a calibrated file")
    return calibrate_on_runs(runs, base, terms=FITTED_TERMS)
