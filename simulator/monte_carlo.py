"""Monte Carlo over sampled durations: the distribution of makespan and cost.

A workflow's percentile SLA is read from the distribution of whole-run makespans
(principle 3 of DESIGN.md), never by adding per-task percentiles.  Replication
``r`` of seed ``s`` draws its durations from its own seed,
:func:`replication_seed` ``(s, r)``, so results are identical whatever the number
of processes, and any single replication can be re-run with
``simulate(..., sample=True, seed=frame.seed[r])`` to look at its trace.

Replications run in parallel across cores in forked processes that inherit the
compiled plan (no pickling); without ``fork`` (not Linux) they run in-process.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from planning.errors import PlanlabError
from planning.sla import SLA
from planning.workflow import Workflow
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.simulate import Durations, compile_plan, default_platform, run_once

#: Below this many replications per process, forking costs more than it saves.
MIN_PER_PROCESS = 50

_JOB: tuple[CompiledModel, Platform, Mapping[str, int] | None] | None = None   # inherited by forked workers


def replication_seed(seed: int, replication: int) -> int:
    """The seed of one replication: independent streams from numpy's SeedSequence."""
    return int(np.random.SeedSequence([int(seed), int(replication)]).generate_state(1, np.uint64)[0])


@dataclass
class MonteCarloResult:
    """Makespans and costs of every replication, and the SLA statistics read from them."""

    makespans: np.ndarray
    costs: np.ndarray
    frame: pd.DataFrame      # replication, seed, makespan_s, cost
    sla: SLA

    def summary(self, sla: "SLA | str | None" = None) -> dict[str, Any]:
        """``makespan_s`` and ``cost`` are the SLA statistic of their distributions (e.g. p95 of makespans,
        p95 of costs: a bill not exceeded in 95 % of runs); ``*_mean_s``/``cost_mean`` are the means."""
        sla = SLA.parse(sla if sla is not None else self.sla)
        m, c = self.makespans, self.costs
        return {"sla": sla.name, "replications": int(len(m)),
                "makespan_s": float(sla.of(m)), "makespan_mean_s": float(m.mean()),
                "makespan_p50_s": float(np.quantile(m, 0.5)), "makespan_p95_s": float(np.quantile(m, 0.95)),
                "makespan_p99_s": float(np.quantile(m, 0.99)), "makespan_std_s": float(m.std(ddof=1)) if len(m) > 1 else 0.0,
                "cost": float(sla.of(c)), "cost_mean": float(c.mean()), "cost_p95": float(np.quantile(c, 0.95)),
                "cost_is": f"{sla.name} of the cost distribution"}


def monte_carlo(workflow: Workflow, plan: Any, cost_model: Any, *, replications: int = 100, seed: int = 0,
                platform: Platform | None = None, processes: int | None = None,
                durations: Durations | None = None, protocol: Any = None,
                warm_pool: Mapping[str, int] | None = None) -> MonteCarloResult:
    """Simulate ``replications`` runs with durations drawn from the cost model.

    ``platform`` defaults to the cost model's at its mean (noise comes from the
    draws); ``processes`` defaults to the CPU count when there are at least
    :data:`MIN_PER_PROCESS` replications per process.  ``warm_pool``: idle processes
    per profile at the start of every replication (see :func:`simulator.simulate.run_once`).
    """
    if not isinstance(replications, (int, np.integer)) or replications < 1:
        raise PlanlabError(f"replications must be a positive integer, got {replications!r}", "use e.g. replications=100")
    model = compile_plan(workflow, plan, cost_model, protocol=protocol, durations=durations)
    platform = platform if platform is not None else default_platform(cost_model, plan, True)
    seeds = [replication_seed(seed, r) for r in range(replications)]
    if processes is None:
        processes = max(1, min(os.cpu_count() or 1, replications // MIN_PER_PROCESS))
    processes = max(1, int(processes))
    if model.tables is not None:
        model.tables.build_all()   # built once here, inherited by forked workers
    if processes > 1 and "fork" in multiprocessing.get_all_start_methods():
        out = _parallel(model, platform, seeds, processes, warm_pool)
    else:
        out = [_one(model, platform, s, warm_pool) for s in seeds]
    makespans = np.array([o[0] for o in out])
    costs = np.array([o[1] for o in out])
    frame = pd.DataFrame({"replication": np.arange(replications), "seed": np.array(seeds, dtype=np.uint64),
                          "makespan_s": makespans, "cost": costs})
    return MonteCarloResult(makespans, costs, frame, SLA.parse(plan.sla))


def _one(model: CompiledModel, platform: Platform, seed: int,
         warm_pool: Mapping[str, int] | None = None) -> tuple[float, float]:
    result = run_once(model, platform, sample=True, seed=seed, record=False, warm_pool=warm_pool)
    return result.makespan_s, result.cost


def _chunk(seeds: list[int]) -> list[tuple[float, float]]:
    assert _JOB is not None
    model, platform, warm_pool = _JOB
    return [_one(model, platform, s, warm_pool) for s in seeds]


def _parallel(model: CompiledModel, platform: Platform, seeds: list[int], processes: int,
              warm_pool: Mapping[str, int] | None = None) -> list[tuple[float, float]]:
    global _JOB
    n_chunks = processes * 4
    size = -(-len(seeds) // n_chunks)
    chunks = [seeds[k:k + size] for k in range(0, len(seeds), size)]
    _JOB = (model, platform, warm_pool)
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.map(_chunk, chunks)
    finally:
        _JOB = None
    return [o for part in parts for o in part]
