"""The benchmarks' peers compute what planlab computes, on the same graphs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _peers  # noqa: E402


from planning.sources.kernels import total  # noqa: E402  (importable by Ray's workers, as the benchmark's kernels are)

GRAPH = {"a": (total, 1, 1), "b": (total, "a", 1), "c": (total, "a", "b")}   # a=2, b=3, c=5


def test_dask_threaded_runs_the_graph() -> None:
    pytest.importorskip("dask")
    seconds, value = _peers.dask_threaded_s(GRAPH, "c", repeats=2)
    assert value == 5 and seconds > 0


def test_ray_runs_the_graph_with_refs_for_parents() -> None:
    pytest.importorskip("ray")
    seconds, value = _peers.ray_s(GRAPH, ["a", "b", "c"], "c", repeats=2, num_cpus=1)
    assert value == 5 and seconds > 0
    import ray

    assert not ray.is_initialized()     # the instance it started is shut down


def test_plain_simpy_model_times_a_diamond_by_hand() -> None:
    parents = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}
    seconds, makespan = _peers.plain_simpy_s(parents, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.0}, repeats=2)
    assert makespan == 5.0 and seconds > 0      # a, then the longer branch c, then d
