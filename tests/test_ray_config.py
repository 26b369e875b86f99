"""The Ray back end's user surface without a cluster: [run], --ray, lazy imports, and one hash slot per run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.config import parse_config
from experiments.config_sections import RunSettings
from planning.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BASE = {"name": "r", "phases": ["plan"], "workflow": [{"spec": "gen:chain:length=2"}], "planner": [{"name": "uniform"}]}


def test_run_section_defaults_to_the_local_runner_and_stays_out_of_the_hash() -> None:
    plain = parse_config(BASE, name="r")
    on_ray = parse_config({**BASE, "run": {"backend": "ray", "address": "head:6379", "real_cells_per_host": 2}},
                          name="r")
    assert plain.run == RunSettings()
    assert on_ray.run == RunSettings("ray", "head:6379", "planlab_host", 2)
    assert plain.hash == on_ray.hash   # same cells, same results: a campaign resumes across back ends


@pytest.mark.parametrize("run,needle", [
    ({"backend": "rey"}, "did you mean 'ray'"),
    ({"backend": "ray", "adress": "x"}, "adress"),
    ({"real_cells_per_host": 0}, "real_cells_per_host"),
    ({"host_resource": " "}, "host_resource"),
    ("ray", "run must be a table"),
])
def test_a_bad_run_section_is_one_config_error(run, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "run": run}, name="r")
    assert needle in str(err.value)


def test_run_help_shows_ray_and_loads_no_ray() -> None:
    code = ("import contextlib, io, sys\nimport experiments.cli\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
            "    experiments.cli.main(['run', '--help'])\n"
            "print('--ray' in out.getvalue(), 'ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.split()[-2:] == ["True", "False"], done.stderr


def test_the_local_runner_and_the_executor_never_import_ray() -> None:
    code = ("import sys\nfrom experiments.runner import run_experiment\nfrom executor import Executor\n"
            "import executor.launcher.ray_cluster, experiments.ray_campaign\nprint('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr


def test_without_ray_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    """A Python without Ray (``ray`` hidden from imports): --ray is one line naming the extra, exit 2."""
    config = tmp_path / "c.toml"
    config.write_text('phases = ["plan"]\n[[workflow]]\nspec = "gen:chain:length=2"\n[[planner]]\nname = "uniform"\n')
    code = ("import sys\nsys.modules['ray'] = None\nimport experiments.cli\n"
            f"sys.exit(experiments.cli.main(['run', {str(config)!r}, '--ray', '--no-report', '--no-progress', "
            f"'--out', {str(tmp_path / 'out')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Ray is not installed" in done.stderr and "planlab[ray]" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_key_of_a_run_shares_one_hash_slot() -> None:
    """Redis Cluster keeps a run's keys (and so its multi-key scripts and transactions) on one node."""
    from redis.crc import key_slot

    from executor.keys import RunKeys

    k = RunKeys("run-42")
    names = [k.live, k.protocol, k.launch, k.done, k.claims, k.deps, k.running, k.events, k.error, k.attempts,
             k.acks, k.metrics, k.finished, k.subdag("w1"), k.const("abc"), k.out("t1"), k.inbox("w1"), k.lease("w1")]
    assert len({key_slot(n.encode()) for n in names}) == 1


def test_spread_real_cells_is_a_switch_of_the_run_section() -> None:
    spread = parse_config({**BASE, "run": {"backend": "ray", "spread_real_cells": True}}, name="r")
    assert spread.run.spread_real_cells and not parse_config(BASE, name="r").run.spread_real_cells
    with pytest.raises(ConfigError, match="spread_real_cells"):
        parse_config({**BASE, "run": {"spread_real_cells": "yes"}}, name="r")
