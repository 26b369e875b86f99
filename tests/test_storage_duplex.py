"""Platform.storage_duplex: uploads and downloads on links of their own (a network's full duplex), hand-computed
against the one shared link; 0 leaves every result as it was."""

from __future__ import annotations

import math

import pytest
import simpy

from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import simulate
from simulator.platform import Platform
from simulator.storage import DuplexLink, SharedLink

MB = 1_000_000
MODEL, CATALOG = CostModel(), load_catalog("local")
#: 100 MB/s, no latency, equal shares; nothing else costs time
LINK = Platform.zero().with_(storage_bandwidth_Bps=100e6)


def crossing() -> tuple[Workflow, Plan]:
    """u (w1, instant) stores 100 MB for v (w2); y (w3, 1 s) stores 100 MB for z (w4): v's download (from 1 s)
    and y's upload (from 1 s) are in flight together.  Sinks store nothing."""
    wf = Workflow("crossing")
    for name, runtime, out in (("u", 0.0, 100 * MB), ("v", 0.0, 0), ("y", 1.0, 100 * MB), ("z", 0.0, 0)):
        wf.add_task(Task(name, "step", runtime_s=runtime, output_bytes=out))
    wf.add_edge("u", "v", 100 * MB)
    wf.add_edge("y", "z", 100 * MB)
    wf.validate()
    places = {"u": "w1", "v": "w2", "y": "w3", "z": "w4"}
    estimates = MODEL.estimate_workflow(wf, CATALOG, "mean")
    return wf, Plan.from_assignment(wf, CATALOG, estimates, MODEL, "mean", places, dict.fromkeys(places.values(),
                                                                                                   "medium"),
                                    planner="assigned")


def times(platform: Platform) -> dict[str, dict[str, float]]:
    wf, plan = crossing()
    return simulate(wf, plan, MODEL, platform=platform).tasks.set_index("task_id")[
        ["download_start_s", "download_end_s", "done_s"]].to_dict("index")


def test_an_upload_and_a_download_share_one_link_by_default() -> None:
    t = times(LINK)
    # u uploads 0 -> 1; from 1 v's download and y's upload each get 50 MB/s: 100 MB each end at 3; z downloads
    # 3 -> 4 alone
    assert t["v"]["download_end_s"] == pytest.approx(3.0) and t["y"]["done_s"] == pytest.approx(3.0)
    assert t["z"]["download_end_s"] == pytest.approx(4.0)


def test_on_a_duplex_link_an_upload_does_not_slow_a_download() -> None:
    t = times(LINK.with_(storage_duplex=1.0))
    # v's download 1 -> 2 on the download link, y's upload 1 -> 2 on the upload link; z downloads 2 -> 3
    assert t["v"]["download_end_s"] == pytest.approx(2.0, abs=1e-4) and t["y"]["done_s"] == pytest.approx(2.0, abs=1e-4)
    assert t["z"]["download_end_s"] == pytest.approx(3.0, abs=1e-4)


def test_a_duplex_platforms_downloads_move_at_the_download_rate_on_their_own_link() -> None:
    t = times(LINK.with_(storage_duplex=1.0, download_bandwidth_Bps=50e6))
    # downloads at 50 MB/s alone: v 1 -> 3; y's upload 1 -> 2 at 100 MB/s; z 2 -> 4 shares the download link with
    # v's last second: from 2, 50 MB left of v and 100 MB of z at 25 MB/s each: v ends at 4, z has 50 MB left at
    # 4 and ends at 5
    assert t["v"]["download_end_s"] == pytest.approx(4.0, abs=1e-4) and t["y"]["done_s"] == pytest.approx(2.0, abs=1e-4)
    assert t["z"]["download_end_s"] == pytest.approx(5.0, abs=1e-4)


def test_duplex_off_is_the_one_link_bit_for_bit() -> None:
    assert Platform().storage_duplex == 0.0
    wf, plan = crossing()
    a = simulate(wf, plan, MODEL, platform=Platform()).tasks.drop(columns="run_id")
    b = simulate(wf, plan, MODEL, platform=Platform().with_(storage_duplex=0.0)).tasks.drop(columns="run_id")
    assert a.equals(b)


def test_the_duplex_link_wakes_the_direction_due_first() -> None:
    env = simpy.Environment()
    link = DuplexLink(SharedLink(env, 100.0), SharedLink(env, 100.0))
    assert link.due == math.inf
    link.up.transfers([300.0], [0.0], 0.0, None, None)
    link.down.transfers([100.0], [0.0], 0.0, None, None)
    assert link.due == link.down.due == pytest.approx(1.0) and link.up.due == pytest.approx(3.0)
    env._now = link.due
    link.wake()                       # the download's group completes; the upload is still in flight
    assert link.down.due == math.inf and link.up.due == pytest.approx(3.0) and link.due == link.up.due


def test_storage_duplex_is_a_switch() -> None:
    with pytest.raises(Exception, match="storage_duplex must be 0 or 1"):
        Platform(storage_duplex=0.5)
