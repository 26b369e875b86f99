"""The live view without a browser: the reader on a real run, the HTTP server, ``planlab view``, bad input.

A real executor runs a workflow of sleeping tasks while the view's poller reads the
coordination server; the page's JSON is fetched over HTTP from the real server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from executor import Executor
from experiments.cli import main
from experiments.live.hub import LiveHub, run_watched
from experiments.live.reader import RunReader
from experiments.live.server import LiveServer
from planning.costs.cost_model import CostModel
from planning.sources.loading import load_workflow
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sla import SLA
from planning.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
SLEEPY = f"{ROOT / 'tests' / 'live_workflows.py'}:sleepy"


def sleepy_plan():
    workflow = load_workflow(SLEEPY)
    plan = get_planner("heft").plan(workflow, load_catalog("local"), CostModel(), SLA.parse("mean"))
    return workflow, plan


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_poller_sees_tasks_run_and_the_end_is_the_clients_trace() -> None:
    workflow, plan = sleepy_plan()
    hub = LiveHub(interval_s=0.25)
    seen_states: set[str] = set()
    outcome: dict = {}
    with Executor() as ex:
        own = RunReader(ex.client, "live-test-run", ex.secret, ex.settings.key_ttl_s)   # the reader, checked directly
        runner = threading.Thread(target=lambda: outcome.update(
            result=run_watched(hub, ex, workflow, plan, run_id="live-test-run", simulated_makespan_s=1.5)))
        runner.start()
        t0 = None
        while runner.is_alive():
            snap = hub.snapshot(None)
            if snap is not None:
                seen_states.add(json.loads(snap[2])["states"])
            if t0 is None:
                obs = own.poll()
                t0 = own.t0 if obs is not None else None
            time.sleep(0.1)
        runner.join()
    hub.close()
    trace = outcome["result"].trace
    assert any("r" in s for s in seen_states), seen_states           # tasks were seen running ...
    assert any("d" in s and "r" in s for s in seen_states), seen_states   # ... and done while others ran
    assert t0 is not None and abs(t0 - trace.meta["t0_epoch"]) < 0.05  # submission time from the live key's TTL
    final = json.loads(hub.snapshot("live-test-run")[2])
    assert final["status"] == "finished" and final["states"] == "d" * len(workflow)
    assert final["progress"]["makespan_s"] == trace.makespan_s
    assert final["progress"]["simulated_makespan_s"] == 1.5
    assert final["progress"]["planned_makespan_s"] == plan.makespan_s
    by_task = {workflow.topology().ids[b[0]]: b for b in final["bars"]}
    for row in trace.tasks.itertuples():
        assert by_task[row.task_id][1:8] == [row.worker, row.download_start_s, row.download_end_s, row.exec_start_s,
                                             row.exec_end_s, row.upload_start_s, row.upload_end_s]


def test_the_server_serves_the_page_its_assets_and_the_runs_json(tmp_path: Path) -> None:
    workflow, plan = sleepy_plan()
    from experiments.live.runplan import RunPlan

    hub = LiveHub()
    trace = Trace.from_plan(plan, run_id="r-plan")      # any trace of the workflow will do for the server
    hub.add_finished(RunPlan.of(workflow, plan, "r-plan", label="planned"), trace)
    server = LiveServer(hub).start()
    try:
        status, page = get(server.url)
        assert status == 200 and b"/static/live.js" in page and b"<svg id=\"dag\"" in page
        for asset in ("live.js", "live.css"):
            status, body = get(server.url + "static/" + asset)
            assert status == 200 and len(body) > 1000
        runs = json.loads(get(server.url + "api/runs")[1])
        assert runs["newest"] == "r-plan" and runs["runs"][0]["status"] == "finished"
        plan_json = json.loads(get(server.url + "api/plan?run=r-plan")[1])
        assert plan_json["ids"] == list(workflow.topology().ids) and len(plan_json["layout"]["column"]) == len(workflow)
        state = json.loads(get(server.url + "api/state")[1])
        assert state["progress"]["makespan_s"] == trace.makespan_s
        assert get(server.url + "api/plan?run=nope")[0] == 404
        with urllib.request.urlopen(server.url + "api/events", timeout=10) as stream:   # server-sent events
            assert stream.readline().startswith(b"retry:")
            line = b""
            while not line.startswith(b"data:"):
                line = stream.readline()
            assert json.loads(line[5:])["run_id"] == "r-plan"
    finally:
        server.close()


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("view") / "run"
    argv = ["execute", "gen:fork_join:width=3,units=500", "--planner", "uniform", "--profile", "small",
            "--catalog", "local", "--sla", "mean", "--save-run", str(folder), "--json"]
    assert main(argv) == 0
    return folder


def test_planlab_view_serves_a_saved_run_until_ctrl_c(saved_run: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "view", str(saved_run), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(" at ", 1)[1].split()[0]
        runs = json.loads(get(url + "api/runs")[1])["runs"]
        assert len(runs) == 1 and runs[0]["status"] == "finished"
        state = json.loads(get(url + "api/state")[1])
        trace = Trace.load(saved_run / "trace")
        assert state["progress"]["makespan_s"] == trace.makespan_s
        assert state["states"] == "d" * len(trace.tasks)
        assert sorted(b[4] for b in state["bars"]) == sorted(trace.tasks["exec_start_s"].tolist())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:     # a Ctrl-C that did not stop it must not leave a server behind
                proc.kill()
                proc.wait()


def test_planlab_view_of_an_unknown_folder_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["view", str(tmp_path / "nowhere"), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "no such saved run or results folder" in err and len(err.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line_exit_2_before_anything_runs(saved_run: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["view", str(saved_run), "--no-browser", "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert f"port {port} on 127.0.0.1 is in use" in err and len(err.strip().splitlines()) == 1
        started = time.monotonic()
        argv = ["execute", SLEEPY, "--planner", "heft", "--catalog", "local", "--live", "--no-browser",
                "--live-port", str(port)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is in use" in err and "--live-port" in err and len(err.strip().splitlines()) == 1
        assert time.monotonic() - started < 30          # refused before the run (its tasks sleep for seconds)


def test_a_port_out_of_range_is_one_line_exit_2(saved_run: Path, capsys) -> None:
    assert main(["view", str(saved_run), "--no-browser", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "70000" in err and "fix:" in err and len(err.strip().splitlines()) == 1


def test_no_browser_is_opened_under_ci(monkeypatch) -> None:
    from experiments.live.session import open_browser

    opened = []
    import webbrowser

    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: opened.append(a) or True)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("CI", "true")
    assert open_browser("http://127.0.0.1:1/") is False
    monkeypatch.delenv("CI")
    monkeypatch.delenv("PLANLAB_NO_BROWSER", raising=False)
    assert open_browser("http://127.0.0.1:1/", disabled=True) is False
    assert open_browser("http://127.0.0.1:1/") is True and len(opened) == 1
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform not in ("darwin", "win32"):
        assert open_browser("http://127.0.0.1:1/") is False     # no graphical session: no console browser either
    assert os.environ.get("CI") is None


def test_run_live_shows_every_real_run_with_the_cells_simulated_makespan(tmp_path: Path) -> None:
    from experiments.config import parse_config
    from experiments.live.engines import watched_engines
    from experiments.live.session import LIVE_METRICS
    from experiments.runner import Engines, run_experiment

    config = parse_config({"phases": ["plan", "simulate", "execute"], "slas": ["mean", "p90"], "repetitions": 1,
                           "workflow": [{"spec": "gen:fork_join:width=2,units=500", "name": "fj"}],
                           "planner": [{"name": "heft"}], "simulate": {"replications": 20}}, name="live")
    hub = LiveHub()
    engines = watched_engines(Engines.for_config(config), hub, metrics=LIVE_METRICS)
    outcome = run_experiment(config, tmp_path / "r", progress=False, engines=engines, log=lambda m: None)
    hub.close()
    summary = outcome.results.summary.set_index("cell_id")
    runs = {r["run_id"]: r for r in hub.runs()}
    assert set(summary.index) <= set(runs) and all(r["status"] == "finished" for r in runs.values())
    for cell, row in summary.iterrows():
        progress = json.loads(hub.snapshot(cell)[2])["progress"]
        assert progress["makespan_s"] == row["real_makespan_s"]
        assert progress["simulated_makespan_s"] == row["simulated_makespan_s"]   # the p90 one from Monte Carlo
        assert progress["planned_makespan_s"] == row["planned_makespan_s"]
    saved = Trace.load(tmp_path / "r" / "runs" / summary.index[0] / "trace")
    assert saved.meta["settings"]["metrics"] == LIVE_METRICS      # rows reach the page within a second


def test_a_failed_run_shows_the_failed_task_and_its_message() -> None:
    from planning.errors import ExecutionError

    workflow = load_workflow(f"{ROOT / 'tests' / 'live_workflows.py'}:broken")
    plan = get_planner("heft").plan(workflow, load_catalog("local"), CostModel(), SLA.parse("mean"))
    hub = LiveHub()
    with Executor() as ex, pytest.raises(ExecutionError):
        run_watched(hub, ex, workflow, plan, run_id="live-broken")
    hub.close()
    snap = json.loads(hub.snapshot("live-broken")[2])
    ids = list(workflow.topology().ids)
    assert snap["status"] == "failed"
    assert snap["states"][ids.index("explode")] == "f" and snap["states"][ids.index("nap")] == "d"
    final = snap["failures"][-1]
    assert final["final"] and final["task"] == "explode" and "ValueError: boom after 0" in final["message"]


def test_a_run_over_before_any_page_opened_is_served_until_one_shows_its_end(capsys) -> None:
    from experiments.live.runplan import RunPlan

    workflow, plan = sleepy_plan()
    hub = LiveHub()
    hub.add_finished(RunPlan.of(workflow, plan, "r"), Trace.from_plan(plan, run_id="r"))
    assert not hub.delivered()                              # no page has shown the end yet
    assert hub.wait_delivered(0.2) is False
    hub.stream_sent(1, "r", 0)                              # a page was sent an older version: still behind
    assert not hub.delivered()
    hub.stream_sent(1, "r", 1)
    assert hub.delivered()
    hub.stream_sent(2, "r", 0)                              # a second page, behind: wait for it too
    assert not hub.delivered()
    hub.stream_closed(2)
    assert hub.delivered() and hub.wait_delivered(0.2)
    started = time.monotonic()
    argv = ["execute", "gen:chain:length=2", "--planner", "uniform", "--profile", "small", "--catalog", "local",
            "--live", "--no-browser", "--live-hold", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "live view: http://127.0.0.1:" in err and "serving its end" in err and "at most 1 s" in err
    assert time.monotonic() - started >= 1.0
