"""Property-based fuzzing of planlab's inputs: WfFormat files, experiment configs, command lines.

Every fuzzed input either works or is refused with one line and exit status 2; a
surely invalid one (a non-finite number, a wrong type, a size above a documented
limit) is always refused.  A bounded number of examples keeps this fast; the
1,000-input campaign with hang detection is ``benchmarks/bench_reliability.py``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.cli import main
from fuzz_inputs import CLI_OPTIONS, CONFIG_KEYS, FUZZ_VALUES, WFFORMAT_FIELDS, _surely_invalid_config, \
    _surely_invalid_wf, cli_case, config_text, wfformat_document

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
values = st.sampled_from(FUZZ_VALUES)


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _check(code: int, err: str, invalid: bool, label: str) -> None:
    assert code in (0, 2), f"{label}: exit {code}: {err}"
    assert "Traceback" not in err, f"{label}: {err}"
    if code == 2:
        assert len(err.strip().splitlines()) == 1, f"{label}: {err}"
    if invalid:
        assert code == 2, f"{label}: surely invalid input accepted"


@FAST
@given(field=st.sampled_from(WFFORMAT_FIELDS), value=values)
def test_fuzzed_wfformat_files_are_planned_or_refused_in_one_line(tmp_path: Path, field, value) -> None:
    value, _ = value
    path = tmp_path / "w.json"
    path.write_text(wfformat_document(field, value))
    numeric = field in ("runtimeInSeconds", "coreCount", "memoryInBytes", "sizeInBytes")
    code, err = _run(["plan", str(path), "--planner", "uniform", "--profile", "small"])
    _check(code, err, _surely_invalid_wf(field, value, numeric), f"{field}={value!r}")


@FAST
@given(key=st.sampled_from(CONFIG_KEYS), value=values)
def test_fuzzed_configs_are_run_or_refused_in_one_line(tmp_path: Path, key, value) -> None:
    value, _ = value
    text = config_text(key, value)
    if text is None:
        return
    path = tmp_path / "c.toml"
    path.write_text(text)
    from experiments.config import load_config
    from planning.errors import PlanlabError

    try:
        load_config(path)
        accepted = True
    except PlanlabError as exc:
        assert "\n" not in exc.one_line()
        accepted = False
    assert not (accepted and _surely_invalid_config(key, value)), f"{key}={value!r} accepted"


@FAST
@given(option=st.sampled_from(CLI_OPTIONS), value=values)
def test_fuzzed_command_lines_work_or_are_refused_in_one_line(tmp_path: Path, option, value) -> None:
    value, _ = value
    case = cli_case(option[0], option[1], value, str(tmp_path))
    code, err = _run(list(case.argv))
    _check(code, err, case.invalid, case.label)


@pytest.mark.parametrize("text, message", [
    ('repetitions = 9999999999999999999\n', "must be at most"),
    ('deadline = -5.0\n', "unknown key 'deadline'"),
    ('slas = ["p٩٥"]\n', "unknown SLA statistic"),
    ('seed = -1\n', "must be at least 0"),
    ('catalog = ""\n', "catalog is empty"),
    ('catalog = ["local"]\n', "catalog must be a string"),
    ('[simulate]\nprocesses = 100000\n', "simulate.processes must be at most"),
])
def test_the_issues_config_examples_are_refused(tmp_path: Path, text: str, message: str) -> None:
    from experiments.config import load_config
    from planning.errors import ConfigError

    section = text if text.startswith("[") else ""   # a [table] goes after the top-level keys
    top = "" if section else text
    path = tmp_path / "c.toml"
    path.write_text(top + 'phases = ["plan"]\n' + section +
                    '[[workflow]]\nspec = "gen:chain:length=3"\n[[planner]]\nname = "heft"\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_negative_deadline_parameter_is_refused(tmp_path: Path) -> None:
    code, err = _run(["plan", "gen:chain:length=3", "--planner", "uniform", "--param", "deadline=-5"])
    assert code == 2 and "deadline must be a positive number" in err
    code, err = _run(["plan", "gen:chain:length=3", "--planner", "uniform", "--profile", "small", "--deadline", "nan"])
    assert code == 2 and "not a finite number" in err
