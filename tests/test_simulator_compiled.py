"""The fast loop's compiled twin (simulator.compiled, setup.py): chosen only when it is current, optional to build.

The twin's results are compared with the Python module's, bit for bit, by every case of
``tests/test_simulator_fast.py`` (``both_paths``); here: which build runs and why, and the build step.
``PLANLAB_REQUIRE_COMPILED=1`` (set by ``.ci/run``) makes the absence of a current twin a failure, so a CI
whose install silently stopped compiling it does not pass unnoticed.
"""

from __future__ import annotations

import os
import runpy
import sys
import types
import warnings
from pathlib import Path

import pytest

from simulator import compiled, fast_loop
from simulator.engine import Run
from simulator.platform import Platform
from simulator.simulate import compile_plan
from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_choice(monkeypatch):
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    compiled.reset()
    yield
    compiled.reset()


def _fake_twin(monkeypatch, name: str, digest: str | None) -> types.ModuleType:
    twin = types.ModuleType(name)
    if digest is not None:
        twin.COMPILED_FROM_SHA256 = digest
    monkeypatch.setitem(sys.modules, name, twin)
    return twin


def test_the_compiled_twin_is_current_where_it_is_required() -> None:
    status = compiled.choose()[1]
    if os.environ.get("PLANLAB_REQUIRE_COMPILED", "") in ("", "0"):
        if status != "compiled":
            pytest.skip(f"no current compiled twin in this install ({status})")
    assert status == "compiled", status
    module = compiled.fast_loop()
    assert module is not fast_loop and module.__name__ == compiled.TWIN
    assert module.COMPILED_FROM_SHA256 == compiled.source_digest()


def test_a_twin_built_from_this_source_is_chosen(monkeypatch) -> None:
    twin = _fake_twin(monkeypatch, "planlab_test_twin", compiled.source_digest())
    assert compiled.choose(twin_name="planlab_test_twin") == (twin, "compiled")


def test_a_stale_twin_is_passed_over_with_one_warning(monkeypatch, tmp_path) -> None:
    edited = tmp_path / "fast_loop.py"
    edited.write_text(Path(fast_loop.__file__).read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    _fake_twin(monkeypatch, "planlab_test_twin", compiled.source_digest())
    module, status = compiled.choose(source=edited, twin_name="planlab_test_twin")
    assert module is fast_loop and "stale" in status and "pip install -e ." in status

    _fake_twin(monkeypatch, "planlab_test_twin", "0" * 64)       # built from another source than this one
    monkeypatch.setattr(compiled, "TWIN", "planlab_test_twin")
    with pytest.warns(RuntimeWarning, match="stale"):
        assert compiled.fast_loop() is fast_loop
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compiled.fast_loop() is fast_loop                  # (once per process)
    assert compiled.status().startswith("python: the compiled build is stale")


def test_a_twin_without_its_digest_is_stale(monkeypatch) -> None:
    _fake_twin(monkeypatch, "planlab_test_twin", None)
    assert compiled.choose(twin_name="planlab_test_twin")[0] is fast_loop


def test_no_build_and_the_pure_switch_run_the_python_module(monkeypatch) -> None:
    assert compiled.choose(twin_name="planlab_no_such_twin") == (fast_loop, "python: no compiled build")
    _fake_twin(monkeypatch, "planlab_test_twin", compiled.source_digest())
    for value, python in (("1", True), ("0", False), ("", False)):
        monkeypatch.setenv(compiled.PURE_ENV, value)
        module, status = compiled.choose(twin_name="planlab_test_twin")
        assert (module is fast_loop) == python, value
        assert (status == "python: PLANLAB_PURE_PYTHON is set") == python


def test_a_run_asked_for_the_python_loop_runs_it() -> None:
    wf = generate("fork_join", width=4, depth=2)
    model = CostModel()
    plan = get_planner("uniform", profile="medium").plan(wf, load_catalog("local"), model, "p95")
    compiled_plan = compile_plan(wf, plan, model)
    platform = Platform.from_cost_model(model, "p95")
    assert Run(compiled_plan, platform, compiled_loop=False).fast_module is fast_loop
    assert Run(compiled_plan, platform).fast_module is compiled.fast_loop()
    assert Run(compiled_plan, platform, fast=False).fast_module is None


def _setup_module() -> dict:
    return runpy.run_path(str(ROOT / "setup.py"), run_name="planlab_setup_under_test")   # (setup() not called)


def test_the_build_writes_the_twin_with_its_sources_digest(tmp_path, monkeypatch) -> None:
    (tmp_path / "simulator").mkdir()
    source = tmp_path / "simulator" / "fast_loop.py"
    source.write_text("X = 1\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "Cython", None)             # (no Cython: nothing to build)
    extensions = _setup_module()["compiled_twins"](tmp_path)
    assert extensions == []
    twin = (tmp_path / "build" / "cython" / "simulator" / "_fast_loop_c.py").read_text(encoding="utf-8")
    assert twin.startswith("X = 1\n")
    assert twin.rstrip().endswith(f'COMPILED_FROM_SHA256 = "{compiled.source_digest(source)}"')


def test_the_build_goes_on_without_cython_and_says_so(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "simulator").mkdir()
    (tmp_path / "simulator" / "fast_loop.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "Cython", None)
    monkeypatch.setitem(sys.modules, "Cython.Build", None)
    assert _setup_module()["compiled_twins"](tmp_path) == []
    said = capsys.readouterr().out
    assert "not compiling the simulator's fast loop" in said and "same results" in said


def test_the_twin_is_an_optional_extension(tmp_path, monkeypatch) -> None:
    """Where Cython is importable (the build's isolated environment has it; the test environment may not), the
    extension it returns may fail to compile without failing the install."""
    pytest.importorskip("Cython.Build")
    monkeypatch.chdir(ROOT)
    [extension] = _setup_module()["compiled_twins"](ROOT)
    assert extension.name == "simulator._fast_loop_c" and extension.optional
