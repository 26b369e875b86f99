"""``Platform.download_bandwidth_Bps``: a download moves at its own rate, an upload at the link's.

Hand-computed: ``a`` (on w0) stores B = 20 MB; ``b0``..``b{n-1}`` (each on its own worker, already running a
root) read it when ``a`` ends.  The link moves R = 100 MB/s (``a``'s upload: B / R = 0.2 s); a download alone
moves D = 50 MB/s (B / D = 0.4 s), and takes the link's share in proportion to its time on it: two at once with
equal shares (``storage_sharing`` 2) each take 0.8 s.  The executor's host probe measured a 64 MB download
2.5x as long as its upload (issue 17, fan-large).
"""

from __future__ import annotations

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
BASE = dict(storage_latency_s=0.0, storage_bandwidth_Bps=100 * MB, cold_start_s=0.0, warm_start_s=0.0,
            invoke_s=0.0, coordination_s=0.0)


def readers_trace(readers: int, **platform):
    wf = Workflow("readers")
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
    return simulate(wf, plan, model, platform=Platform(**(BASE | platform))).tasks.set_index("task_id")


def spans(t, readers: int) -> tuple[float, list[float]]:
    up = float(t.loc["a", "upload_end_s"] - t.loc["a", "upload_start_s"])
    return up, [float(t.loc[f"b{k}", "download_end_s"] - t.loc[f"b{k}", "download_start_s"]) for k in range(readers)]


@pytest.mark.parametrize("host", [{}, {"host_cores": 2.0}])
def test_a_download_moves_at_its_own_rate_and_an_upload_at_the_links(host) -> None:
    up, down = spans(readers_trace(1, download_bandwidth_Bps=50 * MB, **host), 1)
    assert up == pytest.approx(0.2) and down == pytest.approx([0.4])
    up, down = spans(readers_trace(2, download_bandwidth_Bps=50 * MB, **host), 2)
    assert down == pytest.approx([0.8, 0.8])                       # two at once: equal shares of the link


def test_no_download_rate_of_its_own_changes_nothing() -> None:
    for readers in (1, 2):
        default = readers_trace(readers)
        for same in (0.0, 100 * MB):
            assert readers_trace(readers, download_bandwidth_Bps=same).equals(default)
    assert download_scale(Platform()) == 1.0 and download_scale(Platform(download_bandwidth_Bps=50e6)) == 4.0
    assert download_scale(Platform(storage_bandwidth_Bps=float("inf"), download_bandwidth_Bps=50e6)) == 1.0


def test_a_negative_download_rate_is_refused() -> None:
    with pytest.raises(ConfigError, match="download_bandwidth_Bps"):
        Platform(download_bandwidth_Bps=-1.0)
