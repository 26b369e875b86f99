"""The optimizations benchmark's runner-way prediction (benchmarks/_opt_prediction.py): profile, fit, calibrate."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _opt_prediction as pred  # noqa: E402
import bench_optimizations as bench  # noqa: E402
from experiments.host_calibration import FITTED_TERMS, RUNS_PER_WORKFLOW  # noqa: E402
from planning.costs.cost_model import CostModel  # noqa: E402
from planning.errors import PlanlabError  # noqa: E402
from planning.profiles import load_catalog  # noqa: E402
from planning.sources.generators import generate  # noqa: E402
from simulator.platform import Platform  # noqa: E402

#: the probed link terms the runner's calibration does not fit: they must reach the cells' platform unchanged
LINK = {"storage_bandwidth_Bps": 1.5e9, "download_bandwidth_Bps": 0.6e9, "storage_sharing": 1.4,
        "preload_lag_s": 0.0004, "large_transfer_bytes": 32.0 * 2**20, "large_download_s_per_byte": 2e-10}


def test_the_runner_way_profiles_every_profile_fits_history_and_calibrates_from_the_probed_platform() -> None:
    from executor import Executor, ExecutorSettings

    workflows = {"chain": generate("chain", length=3)}
    catalog = load_catalog("local")
    probed = Platform.for_local_host(keep_alive_s=1.0, cold_start_s=0.03, process_start_s=0.008, **LINK)
    prior = CostModel(bandwidth_Bps=7e8, cold_start_s=0.04)
    seen: list[str] = []
    with Executor(settings=ExecutorSettings(keep_alive_s=1.0)) as ex:
        got = pred.runner_prediction(ex, workflows, catalog, prior, probed, repetitions=2, progress=seen.append)
    profiles = [p.name for p in catalog]
    # the profile phase: repetitions outermost, every profile, then the host calibration's runs
    assert seen == ([f"profile.chain.{p}.r{r}" for r in range(2) for p in profiles]
                    + [f"calibrate.chain.r{k}" for k in range(RUNS_PER_WORKFLOW)])
    assert got.profile_runs == 2 * len(profiles)
    # the fit's rows: medians of each task's repetitions on a profile, cold and warm starts apart (a first task
    # may start cold in one repetition and warm in the next); a profile is left out only when
    # profile_fit_history flags the kind slower with more CPUs
    hist = got.fit_history
    assert set(hist["task_id"]) == set(workflows["chain"].task_ids)
    assert set(hist["profile"]) <= set(profiles) and len(set(hist["profile"])) >= 2
    assert (hist.groupby(["task_id", "profile"])["repetitions"].sum() == 2).all()
    assert got.cost_model.fitted and got.cost_model.kinds == ["spin"]
    assert got.cost_model.bandwidth_Bps == prior.bandwidth_Bps      # the probed link stays the prior
    # the platform: every runner term fitted and finite, the probed link kept, this host's cores
    for term in FITTED_TERMS:
        value = getattr(got.platform, term)
        assert math.isfinite(value) and value >= 0, term
        assert term in got.calibration["terms"] and term in got.calibration["base_terms"]
    for term, value in LINK.items():
        assert getattr(got.platform, term) == value, term
    assert got.platform.keep_alive_s == 1.0
    assert got.platform.host_cores == Platform.for_local_host().host_cores
    summary = got.summary()
    assert summary["profile_runs"] == 6 and summary["fit_rows"] == len(hist) and summary["fitted_kinds"] == ["spin"]
    assert "6 profile runs" in pred.prediction_note("runner", got)


def test_no_history_is_a_clear_error() -> None:
    with pytest.raises(PlanlabError, match="no history"):
        pred.fitted_model(pd.DataFrame(), CostModel())  # e.g. every profile run failed


def test_model_for_keeps_a_fitted_model_and_bends_only_the_priors_of_a_replay_workflow() -> None:
    replay = bench.ladder()
    priors = CostModel(bandwidth_Bps=5e8, cold_start_s=0.05)
    bent = bench.model_for(replay, priors)
    assert bent is not priors and bent.prior_exponent == bench.REPLAY_PRIOR_EXPONENT
    assert (bent.bandwidth_Bps, bent.cold_start_s) == (5e8, 0.05)
    fitted = CostModel()
    fitted.fitted_ = True           # (what fit() leaves; the law itself is not what this checks)
    assert bench.model_for(replay, fitted) is fitted
    code = generate("chain", length=3)
    assert bench.model_for(code, priors) is priors


def test_the_notes_say_which_prediction_was_used() -> None:
    assert pred.prediction_note("priors").startswith("Predictions: --prediction priors")
    assert pred.PREDICTIONS == ("priors", "runner", "profiled")


def test_an_unknown_prediction_is_refused_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        bench.main(["--prediction", "oracle", "--out", "/nonexistent/x.json"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--prediction" in err and "'priors'" in err and "'runner'" in err


class _FailingExecutor:
    """An executor whose every run fails as a worker killed over its memory limit would."""

    def run(self, *args: object, **kwargs: object) -> object:
        from planning.errors import ExecutionError

        raise ExecutionError("worker w0 died", "give it more memory")


def test_a_failed_profile_run_is_skipped_and_named() -> None:
    failed: list[str] = []
    history, runs = pred.profile_history(_FailingExecutor(), {"chain": generate("chain", length=2)},
                                         load_catalog("local"), repetitions=1, failed=failed)
    assert runs == 0 and history.empty
    assert failed == [f"profile.chain.{p.name}.r0" for p in load_catalog("local")]


def test_profiled_fits_the_model_and_keeps_the_probed_platform_as_it_is() -> None:
    from executor import Executor, ExecutorSettings

    probed = Platform.for_local_host(keep_alive_s=1.0, cold_start_s=0.03, process_start_s=0.008, **LINK)
    seen: list[str] = []
    with Executor(settings=ExecutorSettings(keep_alive_s=1.0)) as ex:
        got = pred.runner_prediction(ex, {"chain": generate("chain", length=2)}, load_catalog("local"), CostModel(),
                                     probed, repetitions=1, progress=seen.append, calibrate=False)
    assert seen == [f"profile.chain.{p.name}.r0" for p in load_catalog("local")]    # no calibration runs
    assert got.platform is probed and got.cost_model.fitted and got.calibration == {"profile_runs_failed": []}
    assert pred.prediction_note("profiled", got).startswith("Predictions: --prediction profiled")
