"""Calibration: fitted overheads shrink the makespan error on real executions and recover a known
platform from (simulated) executor traces; the held-out error predicts unseen runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from experiments.calibration import CalibrationResult, Observation, calibrate
from experiments.calibration.executions import EXECUTOR_TERMS, WORKFLOW_SYSTEM_TERMS, application_of, read_execution, size_of
from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from simulator import Platform, simulate

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def test_fitting_real_executions_reduces_the_error() -> None:
    files = sorted(DATA.glob("srasearch-*.json"))[:3] + sorted(DATA.glob("helloworld-*.json"))
    result = calibrate(files, max_evaluations=120)
    assert isinstance(result, CalibrationResult)
    assert result.fitted == WORKFLOW_SYSTEM_TERMS
    assert result.error_before > 0.2                      # a bare replay under-predicts real runs
    assert result.error_after < 0.5 * result.error_before
    t = result.table
    assert sorted(t["group"]) == ["helloworld", "helloworld", "srasearch", "srasearch", "srasearch"]
    assert (t["before_s"] < t["real_s"]).all()
    assert t["held_out_s"].notna().all() and math.isfinite(result.held_out_error)
    assert result.held_out_error < result.error_before    # unseen runs: better than a bare replay
    for name in WORKFLOW_SYSTEM_TERMS:
        assert getattr(result.platform, name) >= 0
    summary = result.summary()
    assert {"error_before", "error_after", "held_out_error", "platform", "runs"} <= set(summary)


def test_recovers_a_known_platform_from_executor_traces() -> None:
    truth = Platform.zero().with_(cold_start_s=0.3, invoke_s=0.05, task_overhead_s=0.02)
    model = CostModel()
    observations = []
    for name, wf in (("fork", generate("fork_join", width=4, depth=2)), ("chain", generate("chain", length=6)),
                     ("tree", generate("tree_reduction", leaves=8)), ("layers", generate("random_layered", tasks=30))):
        plan = get_planner("heft").plan(wf, load_catalog("local"), model, "mean")
        trace = simulate(wf, plan, model, platform=truth, sample=True, seed=3)
        observations.append(Observation.from_trace(wf, plan, trace, cost_model=model, name=name, group="all"))
    result = calibrate(observations, fit=("cold_start_s", "invoke_s", "task_overhead_s"), base=Platform.zero(),
                       held_out=False)
    assert result.error_before > 0.3
    assert result.error_after < 0.02
    assert np.isnan(result.held_out_error)
    assert set(EXECUTOR_TERMS) >= set(result.fitted)


def test_bad_requests_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        calibrate([DATA / "missing.json"])
    with pytest.raises(ConfigError, match="cannot fit"):
        calibrate([DATA / "helloworld-chain-5-chameleon.json"], fit=("keep_alive_s",))
    with pytest.raises(ConfigError, match="nothing"):
        calibrate([])
    assert application_of("srasearch-chameleon-10a-004.json") == "srasearch"


CORPUS = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"


def test_compressed_executions_read_like_plain_ones(tmp_path) -> None:
    packed = read_execution(CORPUS / "srasearch-chameleon-10a-001.json.gz")
    plain = read_execution(DATA / "srasearch-chameleon-10a-001.json")
    assert packed.structure_hash() == plain.structure_hash()
    assert packed.metadata["recorded_makespan_s"] == plain.metadata["recorded_makespan_s"]
    assert packed.metadata["source_file"].endswith(".json.gz")
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match="not a readable gzip"):
        read_execution(broken)


def test_names_give_application_and_size() -> None:
    assert (application_of("epigenomics-chameleon-hep-1seq-50k-001.json.gz"),
            size_of("epigenomics-chameleon-hep-1seq-50k-001.json.gz")) == ("epigenomics", "hep-1seq-50k")
    assert size_of("srasearch-chameleon-10a-003") == size_of("srasearch-chameleon-10a-005") == "10a"
    assert size_of("helloworld-chain-5-chameleon.json") == "chain-5"


def test_held_out_by_size_with_baselines_on_real_executions() -> None:
    files = [CORPUS / f"srasearch-chameleon-{size}-00{k}.json.gz" for size in ("10a", "30a") for k in (1, 2)]
    result = calibrate(files)
    t = result.table
    assert set(t["size"]) == {"10a", "30a"} and set(t["family"]) == {"worker/48"}
    assert t["held_out_s"].notna().all()                # each size predicted from the other one
    assert result.kept and result.prior is not None     # two sizes: the shipped Pegasus prior is used
    assert set(result.baselines_held_out) == {"replay", "critical_path_startup", "four_term"}
    assert result.held_out_error < result.baselines_held_out["replay"]
    assert result.summary()["kept"] == list(result.kept)
