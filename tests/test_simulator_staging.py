"""The serial stager's rate per kind of bytes (simulator/staging.py: ``stage_in_s_per_GB`` for external
inputs, ``stage_out_s_per_GB`` for what tasks write) on hand-computed replays, and its calibration from
synthetic executions."""

from __future__ import annotations

import math

import pytest

from experiments.calibration import Observation, calibrate
from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate
from simulator.staging import ExternalBytes, Stager

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
ZERO = Platform.zero()
GB = 1e9


def chain() -> Workflow:
    """root reads 2 GB no task writes and writes 1 GB that leaf reads (same machine: no fetch); leaf writes
    0.5 GB.  Runtimes 10 s and 5 s."""
    tasks = [Task("root", "k", runtime_s=10.0, output_bytes=int(1 * GB),
                  meta={"machines": ["node-1"], "external_input_bytes": int(2 * GB)}),
             Task("leaf", "k", runtime_s=5.0, output_bytes=int(0.5 * GB), meta={"machines": ["node-1"]})]
    return Workflow.from_tasks(tasks, {"root": [], "leaf": ["root"]}, name="chain",
                               metadata={"machines": {"node-1": {"cores": 4}}, "workflow_system": "Pegasus"})


def replay(wf: Workflow, **platform: float) -> float:
    plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
    trace = simulate(wf, plan, FREE, platform=ZERO.with_(**platform))
    return trace.validate().makespan_s


def test_each_kind_of_bytes_pays_its_own_rate_on_top_of_the_common_one() -> None:
    assert replay(chain()) == 15.0
    # common 10 s/GB on 2 + 1 + 0.5 GB = 35 s; external inputs 5 s/GB more on 2 GB = 10 s;
    # written bytes 2 s/GB more on 1 + 0.5 GB = 3 s: 15 + 35 + 10 + 3
    both = replay(chain(), staging_s_per_GB=10.0, stage_in_s_per_GB=5.0, stage_out_s_per_GB=2.0)
    assert both == pytest.approx(63.0)
    assert replay(chain(), stage_in_s_per_GB=5.0) == pytest.approx(15.0 + 10.0)       # only the 2 GB in
    assert replay(chain(), stage_out_s_per_GB=2.0) == pytest.approx(15.0 + 3.0)       # only the 1.5 GB out
    # without the extras, the one rate as before
    assert replay(chain(), staging_s_per_GB=10.0) == pytest.approx(15.0 + 35.0)


def test_the_stager_serves_groups_first_come_first_served() -> None:
    stager = Stager(ZERO.with_(staging_s_per_GB=1.0, stage_in_s_per_GB=3.0, stage_out_s_per_GB=0.5))
    fetch = [2 * GB, ExternalBytes(1 * GB), 0.0]
    assert stager.seconds(fetch, upload=False) == pytest.approx(3.0 + 3.0)    # 3 GB at 1 s + 1 GB external at 3 s
    assert stager.seconds([4 * GB], upload=True) == pytest.approx(4.0 + 2.0)   # 4 GB at 1 s + 0.5 s
    assert stager.serve(0.0, fetch, upload=False) == pytest.approx(6.0)
    assert stager.serve(1.0, [4 * GB], upload=True) == pytest.approx(12.0)    # waits for the first group
    idle = Stager(ZERO)
    assert not idle.active and idle.highest_per_byte == 0.0 and idle.serve(5.0, fetch, upload=False) == 5.0


def test_platform_terms_are_validated_and_round_trip(tmp_path) -> None:
    p = Platform(stage_in_s_per_GB=12.5, stage_out_s_per_GB=3.0)
    p.to_toml(tmp_path / "p.toml")
    back = Platform.from_toml(tmp_path / "p.toml")
    assert (back.stage_in_s_per_GB, back.stage_out_s_per_GB) == (12.5, 3.0)
    assert Platform().stage_in_s_per_GB == 0.0 and Platform().stage_out_s_per_GB == 0.0
    with pytest.raises(Exception, match="stage_out_s_per_GB must be >= 0"):
        Platform(stage_out_s_per_GB=-1.0)


def staged_fan(width: int, gb_in: float, gb_out: float) -> Workflow:
    """A recorded fan on one 8-core machine: ``width`` tasks each reading ``gb_in`` external GB and writing
    ``gb_out`` GB, then a merge."""
    names = [f"t{i}" for i in range(width)]
    tasks = [Task(t, "work", runtime_s=20.0 + i % 4, output_bytes=int(gb_out * GB),
                  meta={"machines": ["node-1"], "external_input_bytes": int(gb_in * GB)})
             for i, t in enumerate(names)]
    tasks.append(Task("merge", "merge", runtime_s=5.0, meta={"machines": ["node-1"]}))
    return Workflow.from_tasks(tasks, {t: [] for t in names} | {"merge": names}, name=f"fan{width}",
                               metadata={"machines": {"node-1": {"cores": 8}}, "workflow_system": "Pegasus"})


SHAPES = ((8, 2.0, 0.5), (16, 0.5, 3.0), (24, 1.5, 1.0), (32, 0.3, 2.5), (40, 2.5, 0.2), (12, 1.0, 4.0))
#: more shapes, for a choice that needs evidence across folds
MORE_SHAPES = ((20, 3.0, 0.3), (28, 0.2, 1.5), (36, 1.2, 3.5), (10, 0.4, 0.4), (14, 2.2, 2.8), (44, 0.6, 0.1))


def staged_runs(truth: Platform, shapes: tuple = SHAPES) -> list[Observation]:
    """One execution of each shape, its real makespan the simulator's on ``truth``."""
    runs = []
    for width, gb_in, gb_out in shapes:
        wf = staged_fan(width, gb_in, gb_out)
        plan = get_planner("recorded").plan(wf, load_catalog("local"), FREE, "mean")
        o = Observation(f"fan-chameleon-w{width}-001", wf, plan, 1.0, None, "fan", "Pegasus", FREE)
        o.real_makespan_s = o.simulate(truth)
        runs.append(o)
    return runs


def test_calibration_recovers_separate_in_and_out_rates_from_synthetic_runs() -> None:
    truth = ZERO.with_(stage_in_s_per_GB=6.0, stage_out_s_per_GB=1.5, workflow_start_s=40.0)
    runs = staged_runs(truth)
    names = ["workflow_start_s", "staging_s_per_GB", "stage_in_s_per_GB", "stage_out_s_per_GB"]
    result = calibrate(runs, prior=None, fit=names, held_out=False)
    assert result.platform.stage_in_s_per_GB == pytest.approx(6.0, rel=0.05)
    assert result.platform.stage_out_s_per_GB == pytest.approx(1.5, rel=0.05)
    assert result.error_after < 0.01
    assert "stage_in_s_per_GB" not in calibrate(runs, prior=None, held_out=False).fitted   # candidates on request
    chosen = calibrate(runs, prior=None, staging_split=True)
    assert "stage_in_s_per_GB" in chosen.kept
    p = chosen.platform          # the common rate may carry part of it: what an external byte pays in all
    assert p.staging_s_per_GB + p.stage_in_s_per_GB == pytest.approx(6.0, rel=0.05)
    assert chosen.held_out_error < 0.05


def test_auto_keeps_the_split_rates_only_where_they_predict_significantly_better() -> None:
    truth = ZERO.with_(stage_in_s_per_GB=6.0, stage_out_s_per_GB=1.5, workflow_start_s=40.0)
    split = calibrate(staged_runs(truth, SHAPES + MORE_SHAPES), prior=None, staging_split="auto", held_out=False,
                      choose=False)
    assert "stage_in_s_per_GB" in split.kept and {"stage_in_s_per_GB", "stage_out_s_per_GB"} <= set(split.fitted)
    assert split.error_after < 0.03
    # one rate for every staged byte: the split rates fit as well but not better, so the simpler terms stay
    common = calibrate(staged_runs(ZERO.with_(staging_s_per_GB=4.0, workflow_start_s=40.0), SHAPES + MORE_SHAPES),
                       prior=None,
                       staging_split="auto", held_out=False, choose=False)
    assert "stage_in_s_per_GB" not in common.fitted and "stage_in_s_per_GB" not in common.kept
    assert common.platform.staging_s_per_GB == pytest.approx(4.0, rel=0.05)
    with pytest.raises(ConfigError, match="unknown staging split 'sometimes'"):
        calibrate(staged_runs(ZERO), prior=None, staging_split="sometimes", held_out=False)
