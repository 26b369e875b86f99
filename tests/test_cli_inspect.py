"""``planlab inspect``: every shipped WfFormat file, every generator, a DSL file, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from planning.sources.generators import GENERATORS

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"
ROOT = Path(__file__).resolve().parents[1]
KEYS = {"tasks", "edges", "roots", "sinks", "depth", "critical_path_s", "recorded_makespan_s"}


def run_json(capsys, *argv: str) -> dict:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_inspect_every_wfformat_file(capsys, path: Path) -> None:
    info = run_json(capsys, str(path))
    raw = json.loads(path.read_text())
    spec_tasks = raw["workflow"]["specification"]["tasks"]
    assert KEYS <= set(info)
    assert info["tasks"] == len(spec_tasks)
    assert info["edges"] == len({(p, t["id"]) for t in spec_tasks for p in t.get("parents", [])})
    assert info["recorded_makespan_s"] == pytest.approx(raw["workflow"]["execution"]["makespanInSeconds"])
    assert 0 < info["critical_path_s"] <= sum(t["runtimeInSeconds"] for t in raw["workflow"]["execution"]["tasks"])


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_inspect_every_generator(capsys, name: str) -> None:
    info = run_json(capsys, f"gen:{name}")
    assert info["tasks"] >= 1 and info["roots"] >= 1 and info["sinks"] >= 1
    assert info["recorded_makespan_s"] is None


def test_inspect_generator_parameters(capsys) -> None:
    info = run_json(capsys, "gen:fork_join:width=5,depth=1")
    assert info["max_width"] == 5


def test_inspect_dsl_file(capsys) -> None:
    info = run_json(capsys, f"{ROOT / 'examples' / 'dsl_pipeline.py'}:pipeline")
    assert (info["tasks"], info["edges"], info["roots"], info["sinks"], info["depth"]) == (5, 4, 4, 1, 2)
    assert info["critical_path_s"] == pytest.approx(0.03)


def test_inspect_text_output(capsys) -> None:
    assert main(["inspect", "gen:chain:length=3"]) == 0
    assert "critical_path_s" in capsys.readouterr().out


@pytest.mark.parametrize("content, needle", [
    ("{not json", "json"),
    (json.dumps({"format": "planlab-workflow/1", "name": "c", "tasks": [
        {"id": "a", "kind": "k", "parents": ["b"]}, {"id": "b", "kind": "k", "parents": ["a"]}]}), "cycle"),
])
def test_inspect_bad_files_one_line_exit_2(tmp_path, capsys, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err.lower() and "Traceback" not in err


@pytest.mark.parametrize("spec", ["missing-file.json", "gen:no_such_generator", "gen:chain:bogus=1"])
def test_inspect_bad_specs_exit_2(capsys, spec: str) -> None:
    assert main(["inspect", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("planlab inspect: error:")


def test_a_ctrl_c_that_python_wrapped_is_an_interrupt_not_a_bug(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C landing while a dataclass is imported comes out as ``RuntimeError: Error calling __set_name__``."""
    import experiments.cli as cli

    def wrapped_interrupt(args) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'simulate'") from exc

    monkeypatch.setattr(cli, "check_arguments", wrapped_interrupt)
    assert main(["inspect", "gen:chain"]) == 130
    assert capsys.readouterr().err == "planlab inspect: interrupted\n"
    monkeypatch.setattr(cli, "check_arguments", lambda args: (_ for _ in ()).throw(RuntimeError("a real bug")))
    assert main(["inspect", "gen:chain"]) == 1
    assert "internal error: RuntimeError: a real bug" in capsys.readouterr().err
