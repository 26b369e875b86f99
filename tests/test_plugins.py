"""Planners and worker protocols by name: registered, file.py:Class, module:Class, installed entry points.

The CLI and the configs share one resolver (``planning.planners.resolve_planner``);
a mistyped name is one line with the closest name, exit 2.  One test installs a
tiny plugin package into the running environment (pip, editable) and plans and
simulates with it from the ``planlab`` command by its entry-point name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.config import parse_config
from planning import CostModel, PlanError, SLA, load_catalog, load_workflow
from planning.errors import ConfigError
from planning.planners import PLANNERS, Planner, get_planner, planner_names, resolve_planner, resolve_protocol
from planning.protocol import WorkerProtocol

REPO = Path(__file__).resolve().parents[1]

#: A planner file as a researcher writes it: no registration, just a class.
PLANNER_FILE = '''
from planning.plan import Plan
from planning.planners import Planner
from planning.protocol import WorkerProtocol


class OneWorker(Planner):
    """Every task on one worker of the fastest profile: no hand-offs at all."""

    def plan(self, workflow, catalog, cost_model, sla):
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of = {t: "only" for t in workflow.task_ids}
        return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of,
                                    {"only": catalog.fastest().name}, planner=self.name)


class AlwaysStore(WorkerProtocol):
    """Store every output, even when its consumer runs on the same worker."""

    def handle_output(self, task_id, worker):
        decision = super().handle_output(task_id, worker)
        return type(decision)(True, decision.nbytes)


NOT_A_CLASS = 3
'''


@pytest.fixture()
def planner_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_planners.py"
    path.write_text(PLANNER_FILE)
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- the resolver
def test_registered_names_resolve_to_their_classes() -> None:
    for name, cls in PLANNERS.items():
        assert resolve_planner(name) is cls
    assert {"heft", "uniform", "critical-path", "wukong", "cost-deadline", "recorded"} <= set(planner_names())
    assert resolve_protocol("default") is WorkerProtocol


def test_module_colon_class_resolves_and_names_the_plan_by_its_spec() -> None:
    from planning.planners.heft import Heft

    assert resolve_planner("planning.planners.heft:Heft") is Heft
    assert resolve_protocol("planning.protocol:WorkerProtocol") is WorkerProtocol
    planner = get_planner("planning.planners.heft:Heft")
    assert planner.name == "heft"             # a registered class keeps its registered name


def test_an_unregistered_subclass_of_a_builtin_does_not_take_its_name(tmp_path: Path) -> None:
    path = tmp_path / "subclass.py"
    path.write_text("from planning.planners.heft import Heft\n\nclass MyHeft(Heft):\n    pass\n\n"
                    "class Named(Heft):\n    name = 'named-heft'\n")
    assert get_planner(f"{path}:MyHeft").name == f"{path}:MyHeft"
    assert get_planner(f"{path}:Named").name == "named-heft"
    config = _config({"name": "subclass.py:MyHeft"}, tmp_path)
    assert config.planners[0].label == "MyHeft"
    assert _config({"name": "subclass.py:Named"}, tmp_path).planners[0].label == "named-heft"


def test_file_colon_class_plans_under_the_spec_name(planner_file: Path) -> None:
    spec = f"{planner_file}:OneWorker"
    planner = get_planner(spec)
    assert isinstance(planner, Planner) and planner.name == spec
    workflow = load_workflow("gen:chain:length=4")
    plan = planner.plan(workflow, load_catalog("local"), CostModel(), SLA.parse("mean"))
    assert plan.planner == spec and set(plan.worker_of.values()) == {"only"}
    assert resolve_protocol(f"{planner_file}:AlwaysStore").__name__ == "AlwaysStore"


@pytest.mark.parametrize("spec, message", [
    ("hfet", "unknown planner 'hfet' (did you mean 'heft'?)"),
    ("critcal-path", "did you mean 'critical-path'?"),
    ("nope.py:Mine", "no such Python file"),
    ("no_such_module_xyz:Mine", "no module named 'no_such_module_xyz'"),
    ("planning.planners.heft:Hef", "has no planner class 'Hef' (did you mean 'Heft'?)"),
    ("planning.protocol:WorkerProtocol", "not a Planner subclass"),
    ("", "empty planner name"),
])
def test_bad_planner_names_are_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(PlanError) as info:
        resolve_planner(spec)
    assert message in info.value.one_line()


def test_a_file_attribute_that_is_not_a_class_is_refused(planner_file: Path) -> None:
    with pytest.raises(PlanError, match="not a Planner subclass"):
        resolve_planner(f"{planner_file}:NOT_A_CLASS")
    with pytest.raises(PlanError, match="not a WorkerProtocol subclass"):
        resolve_protocol(f"{planner_file}:OneWorker")
    with pytest.raises(PlanError, match="not a Planner subclass"):
        resolve_planner(f"{planner_file}:WorkerProtocol")
    with pytest.raises(PlanError, match="unknown protocol 'defualt' \\(did you mean 'default'\\?\\)"):
        resolve_protocol("defualt")


# ---------------------------------------------------------------- the CLI
def test_cli_plans_with_a_file_planner_and_simulates_with_a_file_protocol(planner_file: Path, capsys) -> None:
    spec = f"{planner_file}:OneWorker"
    assert main(["plan", "gen:chain:length=4", "--planner", spec, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["planner"] == spec
    base = ["simulate", "gen:chain:length=4", "--planner", spec, "--replications", "0", "--json"]
    assert main(base) == 0
    default = json.loads(capsys.readouterr().out)
    assert main([*base, "--protocol", f"{planner_file}:AlwaysStore"]) == 0
    stored = json.loads(capsys.readouterr().out)
    # one worker runs the whole chain: the default protocol uploads only the sink's output,
    # AlwaysStore uploads every output, which the simulator must charge for
    assert stored["makespan_deterministic_s"] > default["makespan_deterministic_s"]


@pytest.mark.parametrize("command", ["plan", "simulate"])
def test_cli_unknown_planner_says_did_you_mean(command: str, capsys) -> None:
    assert main([command, "gen:chain:length=3", "--planner", "hfet"]) == 2
    assert "did you mean 'heft'?" in _one_line_error(capsys)


def test_cli_unknown_protocol_is_one_line(capsys) -> None:
    assert main(["simulate", "gen:chain:length=3", "--planner", "heft", "--protocol", "defualt"]) == 2
    assert "did you mean 'default'?" in _one_line_error(capsys)


# ---------------------------------------------------------------- configs
def _config(planner: dict, base: Path):
    return parse_config({"workflow": [{"spec": "gen:chain:length=3"}], "planner": [planner]}, base_dir=base)


def test_config_names_a_file_planner_relative_to_the_config(planner_file: Path) -> None:
    config = _config({"name": "my_planners.py:OneWorker"}, planner_file.parent)
    spec = config.planners[0]
    assert spec.label == "OneWorker" and spec.name == f"{planner_file}:OneWorker"
    assert spec.make().name == spec.name
    assert planner_file in config._input_files()          # editing the planner invalidates cached cells
    before = config.hash
    planner_file.write_text(PLANNER_FILE + "\n# changed\n")
    assert config.hash != before


def test_config_unknown_planner_says_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="planner\\[0\\].name: unknown planner 'hfet' \\(did you mean 'heft'\\?\\)"):
        _config({"name": "hfet"}, tmp_path)
    with pytest.raises(ConfigError, match="no such Python file"):
        _config({"name": "missing.py:Mine"}, tmp_path)


# ---------------------------------------------------------------- an installed plugin package
PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "planlab-test-plugin"
version = "0.0.1"

[project.entry-points."planlab.planners"]
test-one-worker = "planlab_test_plugin:OneWorker"

[project.entry-points."planlab.protocols"]
test-always-store = "planlab_test_plugin:AlwaysStore"

[tool.setuptools]
packages = ["planlab_test_plugin"]
"""


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=240)


@pytest.fixture()
def installed_plugin(tmp_path: Path):
    """A tiny plugin distribution, pip-installed (editable) into this environment, uninstalled afterwards."""
    root = tmp_path / "plugin"
    (root / "planlab_test_plugin").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (root / "planlab_test_plugin" / "__init__.py").write_text(PLANNER_FILE)
    done = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-e", str(root))
    if done.returncode != 0:
        pytest.fail(f"pip could not install the test plugin (the dev extra installs wheel for this): {done.stderr[-800:]}")
    try:
        yield "test-one-worker", "test-always-store"
    finally:
        _pip("uninstall", "-y", "-q", "planlab-test-plugin")


def _planlab(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], capture_output=True, text=True,
                          timeout=240, env=env, cwd=str(REPO))


def test_an_installed_plugin_plans_and_simulates_by_name_from_the_cli(installed_plugin, tmp_path: Path) -> None:
    planner, protocol = installed_plugin
    done = _planlab("plan", "gen:chain:length=4", "--planner", planner, "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["planner"] == planner and info["workers"] == 1
    done = _planlab("simulate", "gen:chain:length=4", "--planner", planner, "--protocol", protocol,
                    "--replications", "0", "--json")
    assert done.returncode == 0, done.stderr
    # a config names it the same way, in a fresh process
    config = tmp_path / "plugin.toml"
    config.write_text(f'phases = ["plan"]\n[[workflow]]\nspec = "gen:chain:length=4"\n[[planner]]\nname = "{planner}"\n')
    done = _planlab("run", str(config), "--out", str(tmp_path / "results"))
    assert done.returncode == 0, done.stderr
    import pandas as pd

    summary = pd.read_parquet(tmp_path / "results" / "summary.parquet")
    assert list(summary["planner"]) == [planner]
    # a typo of an installed plugin's name is answered with that name
    done = _planlab("plan", "gen:chain:length=4", "--planner", "test-one-workr")
    assert done.returncode == 2 and "did you mean 'test-one-worker'?" in done.stderr
    assert done.stderr.count("\n") == 1


def test_execute_runs_a_file_protocol_for_real(planner_file: Path, tmp_path: Path, capsys) -> None:
    """The real executor interprets the named protocol: AlwaysStore stores every output, the default only the sink's."""
    from planning import Trace

    stored = {}
    for protocol in ("default", f"{planner_file}:AlwaysStore"):
        out = tmp_path / protocol.rpartition(":")[2]
        assert main(["execute", "gen:chain:length=3,units=500", "--planner", f"{planner_file}:OneWorker",
                     "--protocol", protocol, "--trace-out", str(out), "--json"]) == 0
        capsys.readouterr()
        tasks = Trace.load(out).tasks.set_index("task_id")
        stored[protocol] = set(tasks.index[tasks["output_bytes"] > 0])
    assert stored["default"] == {"t2"}
    assert stored[f"{planner_file}:AlwaysStore"] == {"t0", "t1", "t2"}


def test_a_config_names_a_protocol_that_both_engines_interpret(planner_file: Path, tmp_path: Path) -> None:
    """[[planner]] protocol = "file.py:Class": the simulation and the real run of the cell both store every output."""
    from experiments.config import load_config
    from experiments.runner import run_experiment

    config = tmp_path / "protocol.toml"
    config.write_text(f'''name = "protocol"
phases = ["plan", "simulate", "execute"]
catalog = "local"
slas = ["mean"]
[[workflow]]
spec = "gen:chain:length=3,units=500"
[[planner]]
name = "{planner_file}:OneWorker"
label = "one"
protocol = "my_planners.py:AlwaysStore"
''')
    outcome = run_experiment(load_config(config), tmp_path / "out", progress=False)
    stored = {engine: set(frame.loc[frame["output_bytes"] > 0, "task_id"])
              for engine, frame in (("simulate", outcome.results.sim_tasks),
                                    ("execute", outcome.results.real_tasks))}
    assert stored == {"simulate": {"t0", "t1", "t2"}, "execute": {"t0", "t1", "t2"}}


def test_a_config_with_an_unknown_protocol_is_refused(tmp_path: Path) -> None:
    from experiments.config import load_config

    config = tmp_path / "bad.toml"
    config.write_text('name = "bad"\nphases = ["plan"]\ncatalog = "local"\nslas = ["mean"]\n'
                      '[[workflow]]\nspec = "gen:chain:length=3"\n[[planner]]\nname = "heft"\nprotocol = "defualt"\n')
    with pytest.raises(ConfigError, match="protocol.*did you mean 'default'"):
        load_config(config)
