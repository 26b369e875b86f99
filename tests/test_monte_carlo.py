"""Monte Carlo: reproducible under a seed whatever the process count, and converging to a
percentile computable by hand (the max of independent lognormal tasks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from planning.costs.cost_model import CostModel
from planning.errors import PlanlabError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import MonteCarloResult, Platform, monte_carlo, simulate
from simulator.monte_carlo import replication_seed

CATALOG = load_catalog("local")


def test_reproducible_and_independent_of_the_process_count() -> None:
    model = CostModel()
    wf = generate("random_layered", tasks=30, seed=2)
    plan = get_planner("heft").plan(wf, CATALOG, model, "p95")
    one = monte_carlo(wf, plan, model, replications=40, seed=7, processes=1)
    two = monte_carlo(wf, plan, model, replications=40, seed=7, processes=2)
    assert isinstance(one, MonteCarloResult)
    assert np.array_equal(one.makespans, two.makespans) and np.array_equal(one.costs, two.costs)
    assert not np.array_equal(one.makespans, monte_carlo(wf, plan, model, replications=40, seed=8).makespans)
    assert list(one.frame.columns) == ["replication", "seed", "makespan_s", "cost"]
    # any replication can be re-run alone to look at its trace
    r = 13
    again = simulate(wf, plan, model, sample=True, seed=int(one.frame["seed"][r]))
    assert again.makespan_s == one.makespans[r] and again.cost == pytest.approx(one.costs[r])
    assert replication_seed(7, r) == int(one.frame["seed"][r])
    s = one.summary()
    assert s["makespan_s"] == s["makespan_p95_s"] == pytest.approx(np.quantile(one.makespans, 0.95))
    assert s["makespan_p50_s"] <= s["makespan_p95_s"] and s["cost"] == pytest.approx(np.quantile(one.costs, 0.95))
    assert one.summary("mean")["makespan_s"] == pytest.approx(one.makespans.mean())
    assert s["cost_mean"] == pytest.approx(one.costs.mean())


def test_p95_of_parallel_tasks_converges_to_the_closed_form() -> None:
    # n independent tasks, each lognormal (the cost model's prior noise, sigma 0.5, mean 2 s);
    # with no overheads the makespan is their max, whose CDF is F(x)**n.
    n, sigma, mean = 8, 0.5, 2.0
    wf = Workflow.from_tasks([Task(f"t{i}", "k", runtime_s=mean, cores=1.0) for i in range(n)], {}, name="par")
    free = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0, prior_sigma=sigma)
    plan = get_planner("uniform", profile="medium").plan(wf, CATALOG, free, "p95")   # medium: 1 CPU
    assert plan.workers.shape[0] == n
    exact = mean * math.exp(sigma * norm.ppf(0.95 ** (1 / n)) - sigma ** 2 / 2)
    errors = []
    for reps in (100, 3000):
        result = monte_carlo(wf, plan, free, replications=reps, seed=11, platform=Platform.zero())
        errors.append(abs(result.summary()["makespan_p95_s"] / exact - 1))
    assert errors[-1] < 0.03
    assert errors[-1] < errors[0] + 0.01
    # the percentile of the workflow is not the sum/max of per-task percentiles
    per_task_p95 = mean * math.exp(sigma * norm.ppf(0.95) - sigma ** 2 / 2)
    assert exact > per_task_p95 * 1.2


def test_bad_replications_are_refused() -> None:
    wf = generate("chain", length=2)
    plan = get_planner("uniform", profile="small").plan(wf, CATALOG, CostModel(), "mean")
    with pytest.raises(PlanlabError, match="replications"):
        monte_carlo(wf, plan, CostModel(), replications=0)
