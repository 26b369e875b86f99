"""``planlab execute --live`` watched in a real headless browser (Debian's Chromium, driven by Playwright).

The command runs a workflow of sleeping tasks (a few seconds) with ``--live``; the
test opens the printed address, waits until the page shows tasks running and then
the run finished, and checks that the page's makespan is the one the client prints
and that its Gantt bars are the saved trace's.  No browser is downloaded: the test
uses the system's ``chromium`` and skips, saying so, only when there is none.  Two
screenshots (mid-run, end) are kept in pytest's tmp directory as artifacts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from planning.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium; "
                                                          ".ci/run installs it)")


def start_live_run(trace_dir: Path) -> tuple[subprocess.Popen, str, list[str]]:
    """Start ``planlab execute --live`` in the background; return it, the page's address and its stderr so far."""
    argv = [sys.executable, "-m", "experiments.cli", "execute", f"{ROOT / 'tests' / 'live_workflows.py'}:sleepy",
            "--planner", "heft", "--catalog", "local", "--sla", "mean", "--live", "--no-browser",
            "--trace-out", str(trace_dir)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    err: list[str] = []
    for line in proc.stderr:
        err.append(line)
        if line.startswith("live view: "):
            break
    else:
        proc.wait(30)
        pytest.fail(f"no live view address printed: {''.join(err)}")
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()   # keep the pipe drained
    return proc, line.split("live view: ", 1)[1].strip(), err


def test_the_page_shows_the_run_live_and_ends_on_the_clients_makespan(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # the browser first: on a busy 2-core machine its start takes seconds, which a run of a few seconds
        # would otherwise spend before the page can see any task running
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            proc, url, err = start_live_run(tmp_path / "trace")
            try:
                page.goto(url, wait_until="load")
                page.wait_for_selector('circle[data-state="running"]', timeout=60_000)
                page.wait_for_selector("g.real-bar", timeout=10_000)       # a bar grows for the running task
                page.screenshot(path=str(tmp_path / "live-running.png"), full_page=True)
                page.wait_for_function("document.getElementById('status').textContent === 'finished'",
                                       timeout=90_000)
                page.screenshot(path=str(tmp_path / "live-finished.png"), full_page=True)
                facts = page.evaluate("""() => ({
                    makespan: document.getElementById('makespan').dataset.value,
                    shown: document.getElementById('makespan').textContent,
                    states: Array.from(document.querySelectorAll('circle[data-task]')).map(c => c.dataset.state),
                    done: document.getElementById('done').textContent,
                    bars: Array.from(document.querySelectorAll('g.real-bar')).map(g => ({
                        task: g.dataset.task, worker: g.dataset.worker, exact: g.dataset.exact,
                        start: Number(g.dataset.start), execStart: Number(g.dataset.execStart),
                        execEnd: Number(g.dataset.execEnd), end: Number(g.dataset.end)})),
                    title: document.title})""")
                out, _ = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        finally:
            browser.close()
    assert proc.returncode == 0, "".join(err)
    printed = {line.split()[0]: line.split()[1] for line in out.splitlines() if len(line.split()) == 2}
    client_makespan = float(printed["makespan_s"])
    assert float(facts["makespan"]) == client_makespan                       # the same float, bit for bit
    assert facts["shown"] == f"{client_makespan:.3f} s"                        # shown to the millisecond
    assert facts["states"] == ["done"] * 5 and facts["done"] == "5"
    assert facts["title"].startswith("planlab live: ")
    trace = Trace.load(tmp_path / "trace")                                     # the report's real Gantt's data
    assert trace.makespan_s == client_makespan
    bars = {b["task"]: b for b in facts["bars"]}
    assert set(bars) == set(trace.tasks["task_id"])
    for row in trace.tasks.itertuples():
        bar = bars[row.task_id]
        assert bar["exact"] == "1" and bar["worker"] == row.worker
        assert (bar["start"], bar["execStart"], bar["execEnd"], bar["end"]) == \
            (row.download_start_s, row.exec_start_s, row.exec_end_s, row.upload_end_s)
    for shot in ("live-running.png", "live-finished.png"):
        data = (tmp_path / shot).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 20_000
