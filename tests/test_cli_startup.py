"""The command line starts at once: what ``import planning`` and the ``planlab`` parsers load.

``planlab --help`` used to take 1.45 s and 224 MiB because building the parsers imported
every command's dependencies (pandas, scipy.stats, matplotlib, the executor).  These
tests keep the import graph lean, each in a fresh interpreter (``sys.modules`` of this
pytest process already holds everything): the package and the parsers import no heavy
library, ``inspect`` only what a workflow truly needs (numpy, networkx), and the lazy
public names of ``planning`` still resolve to the objects where they live.  The times
themselves are measured by ``benchmarks/bench_cli.py``, not asserted here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import planning

ROOT = Path(__file__).resolve().parents[1]
#: Libraries a command loads only when it runs (statistics, plotting, tables, simulation, the executor's server).
HEAVY = ("matplotlib", "scipy", "pandas", "pyarrow", "simpy", "redis", "numpy", "networkx", "cloudpickle",
         "jsonschema")
#: What ``inspect`` needs: a Workflow is a networkx graph, the generators draw with numpy.
WORKFLOW_LIBRARIES = {"numpy", "networkx"}

_LOADED = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code`` (its stdout is ignored)."""
    script = (f"import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
              + "".join(f"    {line}\n" for line in code.splitlines()) + _LOADED)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def heavy_in(packages: set[str]) -> set[str]:
    return packages & set(HEAVY)


def test_import_planning_loads_no_heavy_library() -> None:
    assert heavy_in(loaded_after("import planning")) == set()


def test_import_planning_errors_loads_no_heavy_library() -> None:
    """Every command (and the CLI's error handling) imports the errors first."""
    assert heavy_in(loaded_after("from planning.errors import PlanlabError, ConfigError")) == set()


def test_building_every_parser_loads_no_heavy_library() -> None:
    assert heavy_in(loaded_after("import experiments.cli\nexperiments.cli.build_parser()")) == set()


def test_every_help_page_loads_no_heavy_library() -> None:
    """``planlab --help`` and each command's (and ``model``'s actions') ``--help`` print and load nothing heavy."""
    from experiments.cli import COMMANDS

    pages = [["--help"]] + [[name, "--help"] for name in COMMANDS]
    pages += [["model", action, "--help"] for action in ("validate", "predict", "describe", "synth")]
    code = "from experiments.cli import main\n" + "".join(
        f"assert main({page!r}) == 0, {page!r}\n" for page in pages)
    assert heavy_in(loaded_after(code)) == set()


def test_planlab_help_as_a_command_prints_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "experiments.cli", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    from experiments.cli import COMMANDS

    for name in COMMANDS:
        assert f"    {name}" in done.stdout
    assert done.stderr == ""


def test_inspect_loads_only_what_a_workflow_needs() -> None:
    code = "from experiments.cli import main\nassert main(['inspect', 'gen:chain', '--json']) == 0"
    assert heavy_in(loaded_after(code)) <= WORKFLOW_LIBRARIES


def test_a_user_mistake_in_a_lazily_imported_command_is_one_line_and_exit_2() -> None:
    """The errors a command's ``run()`` raises after its imports are still the CLI's one line, exit 2."""
    done = subprocess.run([sys.executable, "-m", "experiments.cli", "inspect", "gen:no_such_generator"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "error" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", planning.__all__)
def test_every_public_name_resolves_to_its_module_object(name: str) -> None:
    module = importlib.import_module(planning._MODULE_OF[name])
    assert getattr(planning, name) is getattr(module, name)


def test_public_names_are_listed_and_unknown_ones_refused() -> None:
    assert set(planning.__all__) == set(planning._MODULE_OF)
    assert set(planning.__all__) <= set(dir(planning))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        planning.NoSuchName  # noqa: B018
    namespace: dict = {}
    exec("from planning import *", namespace)
    assert set(planning.__all__) <= set(namespace)


def test_plan_commands_default_protocol_is_the_pipelines() -> None:
    """``--protocol``'s default is spelt in the command (the pipeline is heavy to import): the two agree."""
    from experiments.commands.plan import DEFAULT_PROTOCOL as COMMAND_DEFAULT
    from experiments.pipeline import DEFAULT_PROTOCOL

    assert COMMAND_DEFAULT == DEFAULT_PROTOCOL


def test_run_without_a_report_never_loads_the_plotting_library(tmp_path: Path) -> None:
    """``planlab run --no-report`` prints its table and fidelity lines without matplotlib (the report draws later)."""
    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nphases = ["plan", "simulate"]\ncatalog = "local"\nslas = ["mean"]\n'
                      '[[workflow]]\nspec = "gen:chain"\n[[planner]]\nname = "uniform"\nparams = { profile = "medium" }\n')
    out = tmp_path / "out"
    code = (f"from experiments.cli import main\n"
            f"assert main(['run', {str(config)!r}, '--out', {str(out)!r}, '--no-report', '--no-progress']) == 0")
    loaded = loaded_after(code)
    assert "matplotlib" not in loaded and "pandas" in loaded     # it really ran: tables, no plots
    assert (out / "summary.parquet").is_file()
