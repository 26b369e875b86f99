"""One hook overridden in a ten-line subclass changes the planned schedule, the simulation and the real run alike.

The protocol is written once: the planner's schedule, the simulator and the executor
read its decisions (compiled tables, or its hooks), so an override needs no code in
any engine.
"""

from __future__ import annotations

import pytest

from executor import Executor, ExecutorSettings
from planning.costs.cost_model import CostModel
from planning.sources.generators import generate
from planning.plan import Plan
from planning.profiles import load_catalog
from planning.protocol import ExecutionDecision, OutputDecision, WorkerProtocol
from simulator import simulate

MODEL = CostModel()
CATALOG = load_catalog("local")


class StoreEveryOutput(WorkerProtocol):
    """Checkpoint every output to storage, even when its only reader runs on the same worker."""

    def handle_output(self, task_id: str, worker: str) -> OutputDecision:
        return OutputDecision(True, self.output_bytes(task_id))


class RunOnLarge(WorkerProtocol):
    """Execute every task on the large profile, whatever its worker's."""

    def handle_execution(self, task_id: str, worker: str) -> ExecutionDecision:
        return ExecutionDecision(task_id, "large")


def one_worker_plan(workflow, profile: str = "small") -> Plan:
    """Every task on one worker: the base protocol stores only the sink's output."""
    estimates = MODEL.estimate_workflow(workflow, CATALOG, "mean")
    return Plan.from_assignment(workflow, CATALOG, estimates, MODEL, "mean", {t: "w0" for t in workflow.task_ids},
                                {"w0": profile}, planner="one-worker")


def uploaded(tasks, start: str, end: str) -> set[str]:
    """Tasks whose upload phase takes time (their output went to storage)."""
    return set(tasks.loc[tasks[end] > tasks[start], "task_id"])


@pytest.fixture(scope="module")
def ex():
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as executor:
        yield executor


def test_an_output_hook_changes_the_plan_the_simulation_and_the_real_run(ex) -> None:
    workflow = generate("chain", length=3, units=500)
    default = one_worker_plan(workflow)
    store_all = default.retimed(workflow, MODEL, StoreEveryOutput)
    everything, sink = set(workflow.task_ids), {"t2"}
    # the planned schedule
    planned = {name: set(plan.tasks.index[plan.tasks["stored"]]) for name, plan in (("d", default), ("s", store_all))}
    assert planned == {"d": sink, "s": everything}
    assert store_all.makespan_s > default.makespan_s
    # the simulation
    simulated = {name: simulate(workflow, default, MODEL, protocol=cls.for_plan(workflow, default)).tasks
                 for name, cls in (("d", WorkerProtocol), ("s", StoreEveryOutput))}
    assert {k: uploaded(t, "exec_end_s", "upload_end_s") for k, t in simulated.items()} == {"d": sink, "s": everything}
    # the real run
    real = {name: ex.run(workflow, default, protocol=cls.for_plan(workflow, default))
            for name, cls in (("d", WorkerProtocol), ("s", StoreEveryOutput))}
    assert real["d"].results == real["s"].results
    assert {k: uploaded(r.trace.tasks, "upload_start_s", "upload_end_s") for k, r in real.items()} == \
        {"d": sink, "s": everything}


def test_an_execution_hook_changes_the_plan_the_simulation_and_the_real_run(ex) -> None:
    workflow = generate("chain", length=3, units=500)
    default = one_worker_plan(workflow, "small")
    large = default.retimed(workflow, MODEL, RunOnLarge)
    estimates = MODEL.estimate_workflow(workflow, CATALOG, "mean")
    on_large = estimates.exec_s[:, estimates.profiles.index("large")]
    planned = (large.tasks["exec_end_s"] - large.tasks["exec_start_s"]).loc[estimates.task_ids].to_numpy()
    assert planned.tolist() == pytest.approx(on_large.tolist(), rel=1e-12)
    assert large.makespan_s < default.makespan_s          # the large profile runs the tasks faster
    trace = simulate(workflow, default, MODEL, protocol=RunOnLarge.for_plan(workflow, default))
    assert set(trace.tasks["profile"]) == {"large"} and set(trace.workers["profile"]) == {"small"}
    simulated = (trace.tasks["exec_end_s"] - trace.tasks["exec_start_s"]).to_numpy()
    assert simulated.tolist() == pytest.approx(on_large.tolist(), rel=1e-12)
    real = ex.run(workflow, default, protocol=RunOnLarge.for_plan(workflow, default))
    assert set(real.trace.tasks["profile"]) == {"large"} and set(real.trace.workers["profile"]) == {"small"}
