"""The calibration benchmark's own bookkeeping: the noise floor, its notes, and no leak of the shipped prior."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import benchmarks.bench_calibration as bench
from experiments.calibration.baselines import Features
from simulator import Platform


@dataclass
class Run:
    """What the benchmark reads of an execution."""

    name: str
    real_makespan_s: float
    group: str = "app"
    system: str = "Pegasus"
    tasks: int = 3

    @property
    def workflow(self) -> list:
        return [None] * self.tasks

    def features(self) -> Features:
        return Features(self.real_makespan_s / 2, self.real_makespan_s / 2, 2, 3, 0.0)

    def forget_simulations(self) -> None:
        self.forgotten = getattr(self, "forgotten", 0) + 1


def test_noise_floor_by_hand_and_its_note() -> None:
    # three repeats of one size: 100 -> median(110, 130) = 120, error 0.2; 110 -> 115, 0.045; 130 -> 105, 0.192
    runs = [Run(f"app-chameleon-small-00{i}", t) for i, t in enumerate((100.0, 110.0, 130.0), 1)]
    runs.append(Run("app-chameleon-large-001", 500.0))          # one execution of its size: no floor
    floor = bench.noise_floor(runs)
    assert sorted(floor["error"]) == pytest.approx([5 / 110, 25 / 130, 0.2])
    table = bench.pd.DataFrame([{"application": "app", "system": "Pegasus", "size": "small", "real_s": 100.0,
                                 **{f"{c}_s": 100.0 for c in ("simulator", *bench.BASELINES)}}])
    for c in ("simulator", *bench.BASELINES):
        table[f"{c}_error"] = 0.0
    fits = [{"application": "app", "seconds": 1.0, "cpu_seconds": 1.0, "kept": ["dispatch_s"]}]
    entry = bench.summarise(table, floor, fits)["per_application"]["app"]
    assert entry["noise_floor"] == pytest.approx(25 / 130)
    assert "above the per-application target" in entry["noise_floor_note"]
    entry = bench.summarise(table, floor.iloc[0:0], fits)["per_application"]["app"]
    assert entry["noise_floor"] is None and "not measurable" in entry["noise_floor_note"]


def test_without_the_prior_no_prior_is_used(monkeypatch) -> None:
    seen = []

    class Result:
        fitted, platform = (), Platform.zero()

        def predict(self, observation) -> float:
            return observation.real_makespan_s

    def calibrate(train, *, prior="default", **kwargs):     # the real one's default: the shipped prior
        seen.append(prior)
        return Result()

    monkeypatch.setattr(bench, "calibrate", calibrate)
    runs = [Run(f"app-chameleon-{s}-001", t) for s, t in (("small", 100.0), ("medium", 200.0), ("large", 300.0))]
    table, fits = bench.leave_one_size_out(runs, None, use_prior=False)
    assert seen == [None, None, None]                  # not calibrate's default, the shipped prior
    assert (table["simulator_error"] == 0).all() and len(fits) == 3
    # every fit timed as a user's first one: the application's remembered simulations dropped before each
    assert [r.forgotten for r in runs] == [3, 3, 3]


def test_the_command_time_target_is_the_slowest_application() -> None:
    table = bench.pd.DataFrame([{"application": a, "system": "Pegasus", "size": "small", "real_s": 100.0,
                                 **{f"{c}_s": 100.0 for c in ("simulator", *bench.BASELINES)}} for a in ("a", "b")])
    for c in ("simulator", *bench.BASELINES):
        table[f"{c}_error"] = 0.0
    fits = [{"application": a, "seconds": 1.0, "cpu_seconds": 1.0, "kept": []} for a in ("a", "b")]
    floor = bench.pd.DataFrame(columns=["application", "size", "name", "error"])
    commands = {"a": {"seconds": 4.0, "cpu_seconds": 6.0}, "b": {"seconds": 12.5, "cpu_seconds": 20.0}}
    summary = bench.summarise(table, floor, fits, commands)
    assert summary["targets"]["command_seconds"]["value"] == 12.5
    assert summary["targets"]["command_seconds"]["pass"] is False and summary["all_pass"] is False
    assert summary["per_application"]["a"]["command_cpu_seconds"] == 6.0
    commands["b"]["seconds"] = 9.0
    assert bench.summarise(table, floor, fits, commands)["targets"]["command_seconds"]["pass"] is True
    assert "command_seconds" not in bench.summarise(table, floor, fits)["targets"]   # not timed: no verdict


def test_the_summary_lists_the_runs_that_ran_beside_another() -> None:
    table = bench.pd.DataFrame([{"application": "a", "system": "Pegasus", "size": s, "name": f"a-{s}", "real_s": 1.0,
                                 **{f"{c}_error": 0.0 for c in ("simulator", *bench.BASELINES)}} for s in ("x", "y")])
    fits = [{"application": "a", "seconds": 1.0, "cpu_seconds": 1.0, "kept": []}]
    floor = bench.pd.DataFrame(columns=["application", "size", "name", "error"])
    summary = bench.summarise(table, floor, fits, others={"a-x": 0.0, "a-y": 1.234})
    assert summary["per_application"]["a"]["runs_beside_another"] == {"a-y": 1.23}
    assert "runs_beside_another" not in bench.summarise(table, floor, fits)["per_application"]["a"]


def test_command_times_runs_the_real_command(monkeypatch, tmp_path) -> None:
    for f in bench.CORPUS.glob("helloworld-*.json.gz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(bench, "CORPUS", tmp_path)
    times = bench.command_times(["helloworld"])
    assert times["helloworld"]["seconds"] > 0 and times["helloworld"]["cpu_seconds"] > 0
    with pytest.raises(SystemExit, match="failed on nothing"):
        bench.command_times(["nothing"])           # no files: the command's own error, surfaced


def test_size_scatter_interpolates_between_neighbouring_sizes_by_hand() -> None:
    # tasks 100 / 200 / 300 took 100 / 250 / 300 s: the middle size interpolated at 200 s, |200 - 250| / 250 = 0.2;
    # the two ends have no neighbour on one side; two repeats of the middle size are each judged on the same guess
    runs = [Run("app-chameleon-a-001", 100.0, tasks=100), Run("app-chameleon-b-001", 250.0, tasks=200),
            Run("app-chameleon-b-002", 200.0, tasks=200), Run("app-chameleon-c-001", 300.0, tasks=300),
            Run("other-chameleon-a-001", 10.0, group="other", tasks=5)]
    scatter = bench.size_scatter(runs)
    assert sorted(scatter["name"]) == ["app-chameleon-b-001", "app-chameleon-b-002"]
    # the guess uses each size's median makespan of the neighbours: 100 + (300 - 100) * 100 / 200 = 200
    assert sorted(scatter["error"]) == pytest.approx([0.0, 0.2])


def test_the_default_counts_background_runs_as_the_command_does(monkeypatch) -> None:
    """``auto`` (calibrate's default): calibrate counts the training runs itself; each held-out run gets its count
    among its application's runs before it is predicted.  ``off`` passes no counts, ``on`` the corpus's."""
    asked, predicted_with = [], {}

    class Result:
        fitted, platform = (), Platform.zero()

        def predict(self, observation) -> float:
            predicted_with[observation.name] = observation.background_runs
            return observation.real_makespan_s

    def calibrate(train, *, prior="default", **kwargs):
        asked.append(kwargs.get("background_runs", "default"))
        return Result()

    class Tasks(list):
        """A recorded workflow's tasks with its metadata."""

    @dataclass
    class Started(Run):
        start: str = ""
        background_runs: float = 0.0

        @property
        def workflow(self) -> list:
            tasks = Tasks([None] * self.tasks)
            tasks.metadata = {"executed_at": f"2020-01-01T{self.start}+00:00"}
            return tasks

    monkeypatch.setattr(bench, "calibrate", calibrate)
    # medium submitted while small was running
    runs = [Started(f"app-chameleon-{s}-001", 100.0, start=t)
            for s, t in (("small", "00:00:00"), ("medium", "00:00:30"), ("large", "01:00:00"))]
    for mode, kwarg in (("auto", "default"), ("off", False)):
        asked.clear()
        for run in runs:
            run.background_runs = 0.0
        bench.leave_one_size_out(runs, None, use_prior=False, background=mode)
        assert asked == [kwarg] * 3
        assert predicted_with["app-chameleon-medium-001"] == (1.0 if mode == "auto" else 0.0)
    asked.clear()
    bench.leave_one_size_out(runs, None, use_prior=False, background="on")
    assert all(isinstance(a, dict) for a in asked)
