"""The platform's ``storage_sharing`` reaches the simulated link: two workers' concurrent downloads of one output.

Hand-computed: ``a`` (on w0) stores B = 20 MB; b0 and b1 (on w1, w2, both already running their own roots) read it
at once when ``a`` ends.  At R = 100 MB/s one download alone takes B / R = 0.2 s; two at once with factor f each
take f * B / R: 0.4 s with equal shares (f = 2), 0.34 s with f = 1.7.
"""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.plan import Plan
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate
from simulator.transfers import download_scale

MB = 1_000_000
CATALOG = load_catalog("local")


def concurrent_readers(readers: int):
    wf = Workflow("two-readers")
    wf.add_task(Task("a", "probe", runtime_s=0.5, output_bytes=20 * MB))
    worker_of = {"a": "w0"}
    for k in range(readers):
        wf.add_task(Task(f"p{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_task(Task(f"b{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_edge("a", f"b{k}", 20 * MB)
        wf.add_edge(f"p{k}", f"b{k}", 1)
        worker_of[f"p{k}"] = worker_of[f"b{k}"] = f"w{k + 1}"
    wf.validate()
    model = CostModel(latency_s=0.0, bandwidth_Bps=100 * MB, cold_start_s=0.0, warm_start_s=0.0)
    plan = Plan.from_assignment(wf, CATALOG, model.estimate_workflow(wf, CATALOG, "mean"), model, "mean", worker_of,
                                {w: "medium" for w in set(worker_of.values())}, planner="test")
    return wf, plan, model


def simulated_tasks(readers: int, **platform):
    wf, plan, model = concurrent_readers(readers)
    base = dict(storage_latency_s=0.0, storage_bandwidth_Bps=100 * MB, cold_start_s=0.0, warm_start_s=0.0,
                invoke_s=0.0, coordination_s=0.0)
    return simulate(wf, plan, model, platform=Platform(**(base | platform))).tasks.set_index("task_id")


def downloads(readers: int, **platform) -> list[float]:
    t = simulated_tasks(readers, **platform)
    return [float(t.loc[f"b{k}", "download_end_s"] - t.loc[f"b{k}", "download_start_s"]) for k in range(readers)]


@pytest.mark.parametrize("host", [{}, {"host_cores": 2.0}])
def test_two_concurrent_downloads_take_the_sharing_factor_times_one_alone(host) -> None:
    assert downloads(1, **host) == pytest.approx([0.2])
    assert downloads(2, **host) == pytest.approx([0.4, 0.4])                        # equal shares (the default)
    assert downloads(2, storage_sharing=1.7, **host) == pytest.approx([0.34, 0.34])
    assert downloads(2, storage_sharing=1.0, **host) == pytest.approx([0.2, 0.2])   # no contention at all


def test_the_default_sharing_changes_nothing() -> None:
    assert downloads(2, storage_sharing=2.0) == downloads(2)
    assert math.isclose(Platform().storage_sharing, 2.0)


# ``Platform.download_bandwidth_Bps``: a download moves at its own rate D alone, an upload at the link's R, and a
# download takes the link's share in proportion to its time on it.  With D = 50 MB/s: a's upload B / R = 0.2 s, one
# download alone B / D = 0.4 s, two at once with equal shares 0.8 s each.  (The executor's host probe measured a 64 MB
# download 2.5x as long as its upload: issue 17, fan-large.)

def upload_span(readers: int, **platform) -> float:
    t = simulated_tasks(readers, **platform)
    return float(t.loc["a", "upload_end_s"] - t.loc["a", "upload_start_s"])


@pytest.mark.parametrize("host", [{}, {"host_cores": 2.0}])
def test_a_download_moves_at_its_own_rate_and_an_upload_at_the_links(host) -> None:
    assert upload_span(1, download_bandwidth_Bps=50 * MB, **host) == pytest.approx(0.2)
    assert downloads(1, download_bandwidth_Bps=50 * MB, **host) == pytest.approx([0.4])
    assert downloads(2, download_bandwidth_Bps=50 * MB, **host) == pytest.approx([0.8, 0.8])


def test_no_download_rate_of_its_own_changes_nothing() -> None:
    for readers in (1, 2):
        assert downloads(readers, download_bandwidth_Bps=0.0) == downloads(readers)
        assert downloads(readers, download_bandwidth_Bps=100 * MB) == downloads(readers)
    assert download_scale(Platform()) == 1.0 and download_scale(Platform(download_bandwidth_Bps=50e6)) == 4.0
    assert download_scale(Platform(storage_bandwidth_Bps=math.inf, download_bandwidth_Bps=50e6)) == 1.0


def test_a_negative_download_rate_is_refused() -> None:
    with pytest.raises(ConfigError, match="download_bandwidth_Bps"):
        Platform(download_bandwidth_Bps=-1.0)


# ``Platform.large_transfer_bytes`` and ``large_*_s_per_byte``: a transfer's bytes past the threshold cost more, a
# delay of the worker's own (not a share of the link).  B = 20 MB with the threshold at 15 MB: 5 MB beyond.  At
# 10 ns/B downloaded one download alone takes B / R + 0.05 = 0.25 s and two at once 2 B / R + 0.05 = 0.45 s each
# (the extra is not shared); at 2 ns/B uploaded a's upload takes 0.2 + 0.01 = 0.21 s.  Below the threshold nothing
# changes.  (Warm executor workers moved 10-32 MB at 1.2-2.4 GB/s and 64 MB at 0.66-1.15 GB/s: issue 17.)
LARGE = {"large_transfer_bytes": 15 * MB, "large_download_s_per_byte": 1e-8, "large_upload_s_per_byte": 2e-9}


@pytest.mark.parametrize("host", [{}, {"host_cores": 2.0}])
def test_bytes_past_the_large_transfer_threshold_cost_their_own_delay(host) -> None:
    assert downloads(1, **LARGE, **host) == pytest.approx([0.25])
    assert downloads(2, **LARGE, **host) == pytest.approx([0.45, 0.45])
    assert upload_span(1, **LARGE, **host) == pytest.approx(0.21)


def test_transfers_below_the_large_threshold_move_at_the_links_rate() -> None:
    below = LARGE | {"large_transfer_bytes": 20 * MB}
    for readers in (1, 2):
        assert downloads(readers, **below) == downloads(readers)
    assert upload_span(1, **below) == upload_span(1)


def test_a_negative_large_transfer_cost_is_refused() -> None:
    with pytest.raises(ConfigError, match="large_download_s_per_byte"):
        Platform(large_download_s_per_byte=-1.0)
    assert math.isinf(Platform().large_transfer_bytes)
