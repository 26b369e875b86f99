"""The report opened in a real headless browser (Debian's Chromium driven by Playwright): every image loads.

No browser is downloaded: the test uses the system's ``chromium`` (``.ci/run`` installs
it with apt) and skips, saying so, only when there is none.  The screenshot is kept in
pytest's tmp directory as an artifact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from experiments import report_figures as rf
from experiments.config import parse_config
from experiments.report import make_report
from experiments.runner import run_experiment

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTIONS = ("what-to-look-at", "summary", "sla", "figures", "time", "errors", "resources", "provenance")
FIGURES = ("sla_met", "makespans", "prediction_error", "gantt-fj", "cost_vs_makespan", "makespan_distributions",
           "phases-fj")
SMALL = {
    "phases": ["plan", "simulate", "execute"],
    "slas": ["mean", "p90"],
    "repetitions": 2,
    "workflow": [{"spec": "gen:fork_join:width=3", "name": "fj"}],
    "planner": [{"name": "heft"}, {"name": "critical-path"}],
    "simulate": {"replications": 20},
}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium; "
                                                          ".ci/run installs it)")


def open_page(index: Path, screenshot: Path) -> dict:
    """Load ``index`` in headless Chromium; return what the page shows and save a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(index.as_uri(), wait_until="load")
            facts = page.evaluate("""() => ({
                images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
                sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
                failed: Array.from(document.querySelectorAll('.failed')).filter(e => e.offsetHeight > 0).map(e => e.textContent),
                title: document.title})""")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return facts


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser") / "r"
    run_experiment(parse_config(SMALL, name="browser"), root, progress=False, log=lambda m: None)
    return root


def test_every_figure_loads_and_every_section_is_there(results: Path, tmp_path: Path) -> None:
    report = make_report(results)
    facts = open_page(report.index, tmp_path / "report.png")
    assert facts["title"] == "planlab report: browser"
    assert {i["src"] for i in facts["images"]} == {f"figures/{name}.png" for name in FIGURES} == \
        {f"figures/{name}.png" for name in report.figures}
    assert all(i["ok"] for i in facts["images"]), [i for i in facts["images"] if not i["ok"]]
    assert set(SECTIONS) <= set(facts["sections"]), facts["sections"]
    assert facts["failed"] == []
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "report.png").stat().st_size > 50_000


def test_a_failed_figure_is_visible_in_the_page(results: Path, tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ValueError("'yerr' must not contain negative values")

    monkeypatch.setattr(rf, "makespan_bars", broken)
    report = make_report(results, tmp_path / "report")
    facts = open_page(report.index, tmp_path / "broken.png")
    assert all(i["ok"] for i in facts["images"]) and "figures/makespans.png" not in [i["src"] for i in facts["images"]]
    assert "report-problems" in facts["sections"]
    assert any("makespans could not be drawn: ValueError: 'yerr' must not contain negative values" in t
               for t in facts["failed"])
