"""Every name a user types gets "did you mean ...?" when it is a near miss, one line, exit 2."""

from __future__ import annotations

import pytest

from experiments.cli import main
from planning.names import closest_names, did_you_mean


def test_closest_names_is_case_insensitive_and_silent_when_nothing_is_close() -> None:
    assert closest_names("HFET", ["heft", "uniform"]) == ["heft"]
    assert did_you_mean("critcal-path", ["critical-path", "heft"]) == " (did you mean 'critical-path'?)"
    assert did_you_mean("zzzzzz", ["heft", "uniform"]) == ""


@pytest.mark.parametrize("args, hint", [
    (["--planner", "hfet"], "did you mean 'heft'?"),
    (["--planner", "uniform", "--catalog", "lambada"], "did you mean 'lambda'?"),
    (["--planner", "uniform", "--profile", "larg"], "did you mean 'large'?"),
    (["--planner", "heft", "--sla", "meen"], "did you mean 'mean'?"),
    (["--planner", "heft", "--sla", "p95x"], "did you mean 'p95'?"),
    (["--planner", "critical-path", "--param", "tolerence=0.1"], "did you mean 'tolerance'?"),
])
def test_plan_options_suggest_the_closest_name(args: list[str], hint: str, capsys) -> None:
    assert main(["plan", "gen:chain:length=3", *args]) == 2
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 1


@pytest.mark.parametrize("spec, hint", [("gen:chian", "did you mean 'chain'?"),
                                        ("gen:chain:lenght=3", "did you mean 'length'?")])
def test_generator_names_and_parameters_suggest_the_closest(spec: str, hint: str, capsys) -> None:
    assert main(["inspect", spec]) == 2
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 1
