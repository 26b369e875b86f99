"""The per-machine serial starter (``machine_dispatch_s``, simulator/dispatch.py) on hand-computed cases,
and its calibration from synthetic recorded executions."""

from __future__ import annotations

import math

import pytest

from experiments.calibration import Observation, calibrate
from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate
from simulator.dispatch import Dispatcher

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
ZERO = Platform.zero()


def recorded(runtimes: dict[str, float], machine_of: dict[str, str], cores: int, parents=None) -> Workflow:
    """A recorded execution: each task's runtime and machine, every machine with ``cores`` cores."""
    tasks = [Task(t, "k", runtime_s=r, output_bytes=0, meta={"machines": [machine_of[t]]}) for t, r in runtimes.items()]
    parents = parents or {t: [] for t in runtimes}
    machines = {m: {"cores": cores} for m in set(machine_of.values())}
    return Workflow.from_tasks(tasks, parents, name="rec", metadata={"machines": machines, "workflow_system": "Makeflow"})


def replay(wf: Workflow, **platform: float):
    plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
    trace = simulate(wf, plan, FREE, platform=ZERO.with_(**platform))
    return trace.validate(), trace.tasks.set_index("task_id")


def test_each_machine_starts_its_tasks_one_at_a_time() -> None:
    # a, b on m1 (2 cores), c on m2: all released at 0; m1 starts a at 2 and b at 4, m2 starts c at 2
    wf = recorded({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": "m1", "b": "m1", "c": "m2"}, cores=2)
    trace, t = replay(wf, machine_dispatch_s=2.0)
    assert sorted(t.loc[["a", "b"], "done_s"]) == [3.0, 5.0] and t.at["c", "done_s"] == 3.0
    assert trace.makespan_s == 5.0
    # after the one serial dispatcher (1 s each: leaves at 1, 2, 3): m1 starts at 1+2 = 3 then max(2, 3)+2 = 5;
    # m2's starter is free, so c leaves at 3 + 2 = 5
    trace, t = replay(wf, dispatch_s=1.0, machine_dispatch_s=2.0)
    assert sorted(t["done_s"]) == [4.0, 6.0, 6.0] and trace.makespan_s == 6.0


def test_long_tasks_hide_the_starter() -> None:
    # 4 tasks of 100 s on one machine of 4 cores: the 4th starts at 4 x 5 s = 20 s, ends at 120 s (not 100 + 4 x 5 x ...)
    wf = recorded({f"t{i}": 100.0 for i in range(4)}, {f"t{i}": "m" for i in range(4)}, cores=4)
    trace, t = replay(wf, machine_dispatch_s=5.0)
    assert sorted(t["exec_start_s"]) == [5.0, 10.0, 15.0, 20.0] and trace.makespan_s == 120.0
    # continuations (a chain on one slot) pass the starter too: 3 x (5 + 1)
    chain = recorded({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": "m", "b": "m", "c": "m"}, cores=1,
                     parents={"a": [], "b": ["a"], "c": ["b"]})
    assert replay(chain, machine_dispatch_s=5.0)[0].makespan_s == 18.0


def test_without_the_term_the_dispatcher_is_the_one_serial_one() -> None:
    only_serial = Dispatcher(ZERO.with_(dispatch_s=2.0))
    assert [only_serial.serve(0.0, w) for w in ("m1#0", "m2#0", "m1#1")] == [2.0, 4.0, 6.0]
    idle = Dispatcher(ZERO)
    assert not idle.active
    per_machine = Dispatcher(ZERO.with_(machine_dispatch_s=3.0), {"x": "m1", "y": "m1"})
    assert [per_machine.serve(1.0, w) for w in ("x", "y", "m2#0")] == [4.0, 7.0, 4.0]   # m2#0: named machine m2


def test_platform_term_is_validated_and_round_trips(tmp_path) -> None:
    p = Platform(machine_dispatch_s=12.5)
    p.to_toml(tmp_path / "p.toml")
    assert Platform.from_toml(tmp_path / "p.toml").machine_dispatch_s == 12.5
    assert Platform().machine_dispatch_s == 0.0
    with pytest.raises(Exception, match="machine_dispatch_s must be >= 0"):
        Platform(machine_dispatch_s=-1.0)


def fan(width: int, machines: int, runtime: float = 5.0) -> Workflow:
    """A recorded fan-out: ``width`` short tasks dealt over ``machines`` machines of 8 cores, then a merge."""
    names = [f"t{i}" for i in range(width)]
    runtimes = {t: runtime + i % 3 for i, t in enumerate(names)} | {"merge": 2.0}
    machine_of = {t: f"node-{i % machines}" for i, t in enumerate(names)} | {"merge": "node-0"}
    return recorded(runtimes, machine_of, cores=8, parents={t: [] for t in names} | {"merge": names})


def test_calibration_recovers_the_machine_starter_from_synthetic_runs() -> None:
    truth = ZERO.with_(machine_dispatch_s=6.0, workflow_start_s=30.0)
    runs = []
    for width, machines in ((12, 1), (24, 2), (40, 2), (60, 4), (90, 3)):
        wf = fan(width, machines)
        plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
        o = Observation(f"fan-chameleon-w{width}-001", wf, plan, 1.0, None, "fan", "Makeflow", FREE)
        o.real_makespan_s = o.simulate(truth)
        runs.append(o)
    assert "machine_dispatch_s" not in calibrate(runs, prior=None, held_out=False).fitted   # a candidate on request
    result = calibrate(runs, prior=None, machine_starter=True)
    assert "machine_dispatch_s" in result.kept
    assert result.platform.machine_dispatch_s == pytest.approx(6.0, rel=0.05)
    assert result.held_out_error < 0.05


def test_the_starter_is_a_candidate_only_when_a_run_used_several_machines() -> None:
    from experiments.calibration.executions import unidentifiable

    def obs(machines: int) -> Observation:
        wf = fan(16, machines)
        plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
        return Observation(f"fan-chameleon-m{machines}-001", wf, plan, 100.0, None, "fan", "Makeflow", FREE)

    assert unidentifiable([obs(1), obs(1)]) == ("machine_dispatch_s",)
    assert unidentifiable([obs(1), obs(2)]) == ()
