"""The makespan-only replay path (simulator.makespan_replay) against the general loop, bit for bit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from experiments.calibration.executions import Observation
from simulator.engine import Run
from simulator.makespan_replay import applies, applies_to, makespan, program
from simulator.platform import Platform
from simulator.simulate import run_once

CORPUS = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"

#: the workflow-system terms a calibration fits, alone and together, at the sizes fits reach (a heavy stager
#: whose queue runs far behind the executions, a dispatcher with other runs beside it, per-machine starters)
PLATFORMS = [
    Platform.zero(),
    Platform.zero().with_(dispatch_s=0.9, level_delay_s=20.0, staging_s_per_GB=8.0),
    Platform.zero().with_(dispatch_s=4.0, staging_s_per_GB=8.0, stage_in_s_per_GB=3.0, stage_out_s_per_GB=5.0,
                          workflow_start_s=100.0),
    Platform.zero().with_(machine_dispatch_s=8.0, dispatch_s=1.0, background_dispatch_s=1.0, background_runs=2.0),
    Platform.zero().with_(staging_s_per_GB=80.0),
    Platform.zero().with_(level_delay_s=35.0, machine_dispatch_s=2.0),
]


def _executions() -> list[Path]:
    """The two smallest shipped executions of every application (every workflow system's shapes, in seconds)."""
    by_app: dict[str, list[Path]] = {}
    for path in sorted(CORPUS.glob("*.json.gz")):
        by_app.setdefault(path.name.split("-")[0], []).append(path)
    return [p for paths in by_app.values() for p in sorted(paths, key=lambda p: p.stat().st_size)[:2]]


@pytest.fixture(scope="module")
def observations() -> list[Observation]:
    return [Observation.from_execution(p) for p in _executions()]


def test_agrees_with_the_general_loop_on_shipped_executions(observations):
    assert len({o.group for o in observations}) >= 9     # every application of the corpus
    compared = 0
    for o in observations:
        for slots in (1.0, 2.0):
            model = o.with_slots_per_core(slots).model
            for platform in PLATFORMS:
                assert applies(Run(model, platform, None, record=False))   # (not the fallback answering)
                assert applies_to(model, platform)
                expected = run_once(model, platform, record=False).makespan_s
                assert makespan(model, platform) == expected, (o.name, slots, platform)
                compared += 1
    assert compared == len(observations) * 2 * len(PLATFORMS)


def test_other_platforms_fall_back_to_the_general_loop(observations):
    model = observations[0].model
    for platform in (Platform.zero().with_(storage_latency_s=0.05, dispatch_s=1.0),
                     Platform.zero().with_(storage_bandwidth_Bps=1e8, staging_s_per_GB=8.0),
                     Platform.zero().with_(task_overhead_s=0.5), Platform.zero().with_(cold_start_s=2.0)):
        assert not applies(Run(model, platform, None, record=False))
        assert not applies_to(model, platform)
        assert makespan(model, platform) == run_once(model, platform, record=False).makespan_s


def test_the_check_without_a_run_is_the_runs(observations):
    """``applies_to(model, platform)`` (what a calibration asks, building no run) says what ``applies`` says of the
    run, on platforms each of whose conditions fails alone: a shared host, a cluster, a link, latencies, overheads."""
    model = observations[0].model
    others = [Platform.zero().with_(host_cores=4.0), Platform.zero().with_(storage_bandwidth_Bps=1e9),
              Platform.zero().with_(storage_latency_s=0.01), Platform.zero().with_(task_overhead_s=0.1),
              Platform.zero().with_(coordination_s=0.1), Platform.zero().with_(invoke_s=0.1),
              Platform.zero().with_(cold_start_s=0.1), Platform.zero().with_(warm_start_s=0.1)]
    for platform in PLATFORMS + others:
        assert applies_to(model, platform) == applies(Run(model, platform, None, record=False)), platform
    assert sum(applies_to(model, p) for p in others) == 0


def test_a_models_program_is_built_once(observations):
    """What no platform changes is read once per compiled model: every replay of it reads the same program."""
    model = observations[2].with_slots_per_core(2.0).model
    first = program(model)
    assert first is not None and first.n == model.n
    makespan(model, PLATFORMS[1])
    makespan(model, PLATFORMS[2])
    assert program(model) is first


def test_calibration_simulates_through_it(observations, monkeypatch):
    """An observation's simulation is the replay path's answer (what makes ``planlab calibrate`` fast)."""
    import simulator.makespan_replay as replay

    calls = []
    original = replay.replay_makespan
    monkeypatch.setattr(replay, "replay_makespan",
                        lambda found, platform: calls.append(found) or original(found, platform))
    o = observations[1]
    platform = Platform.zero().with_(dispatch_s=1.5, staging_s_per_GB=9.0)
    value = o.simulate(platform)
    assert calls and value == run_once(o.model, platform, record=False).makespan_s
    assert math.isfinite(value) and value > 0
