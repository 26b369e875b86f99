"""Experiment configs: the shipped ones load; every bad config is one ConfigError naming the key and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.config import load_config, parse_config, scaled_workflow
from planning.errors import ConfigError
from planning.sources.loading import load_workflow

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"

GOOD = """
name = "t"
phases = ["plan", "simulate"]
slas = ["mean", "p95"]

[[workflow]]
spec = "gen:chain:length=3"

[[planner]]
name = "heft"
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_configs_load(path: Path) -> None:
    config = load_config(path)
    assert config.workflows and config.planners and config.slas
    for w in config.workflows:
        assert len(config.workflow(w.label)) > 0


def test_quickstart_is_what_the_issue_asks() -> None:
    config = load_config(CONFIGS / "quickstart.toml")
    assert config.phases == ("profile", "plan", "simulate", "execute")
    assert config.catalog.name == "local" and [s.name for s in config.slas] == ["mean", "p95"]
    assert len(config.planners) == 3 and config.execute.redis_url is None
    specs = [w.spec for w in config.workflows]
    assert specs[0].startswith("gen:five_branches") and specs[1].endswith(".json")


def test_defaults_and_resolution(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert (config.name, config.repetitions, config.seed) == ("t", 1, 0)
    assert config.workflows[0].label == "chain" and config.planners[0].label == "heft"
    assert config.has("simulate") and not config.has("execute")


def test_wfformat_path_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    source = REPO / "experiments" / "data" / "helloworld-chain-5-chameleon.json"
    (tmp_path / "data" / "w.json").write_bytes(source.read_bytes())
    config = load_config(write(tmp_path, GOOD.replace("gen:chain:length=3", "data/w.json")))
    assert Path(config.workflows[0].spec) == (tmp_path / "data" / "w.json").resolve()
    assert config.workflows[0].label == "w"


def test_hash_changes_with_the_config(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, GOOD, "a.toml")).hash
    assert load_config(write(tmp_path, GOOD, "b.toml")).hash == a
    assert load_config(write(tmp_path, GOOD.replace("p95", "p90"), "c.toml")).hash != a


BAD = [
    ("unknown planner", GOOD.replace('name = "heft"', 'name = "hfet"'), r"planner\[0\]\.name: unknown planner 'hfet'.*heft"),
    ("bad planner param", GOOD.replace('name = "heft"', 'name = "heft"\nparams = { speed = 3 }'),
     r"planner\[0\]\.params.*valid parameters"),
    ("missing workflow file", GOOD.replace("gen:chain:length=3", "nowhere/missing.json"),
     r"workflow\[0\]\.spec: no such workflow file .*missing\.json.*relative to the config"),
    ("missing python file", GOOD.replace("gen:chain:length=3", "nope.py:wf"), r"workflow\[0\]\.spec: no such Python file"),
    ("unknown generator", GOOD.replace("gen:chain:length=3", "gen:chian"), r"workflow\[0\] \(chian\)"),
    ("bad SLA", GOOD.replace('"p95"', '"p101"'), r"slas\[1\]: unknown SLA statistic 'p101'"),
    ("SLA not a list", GOOD.replace('slas = ["mean", "p95"]', 'slas = "mean"'), r"slas must be a non-empty list"),
    ("repetitions wrong type", 'repetitions = "3"\n' + GOOD, r"repetitions must be an integer, got str"),
    ("repetitions zero", "repetitions = 0\n" + GOOD, r"repetitions must be at least 1"),
    ("unknown top key", "planers = 3\n" + GOOD, r"unknown key 'planers'.*did you mean 'planner'"),
    ("unknown workflow key", GOOD.replace('spec = "gen:chain:length=3"', 'spec = "gen:chain"\nscael = 2'),
     r"unknown key 'scael' in \[\[workflow\]\] #0.*did you mean 'scale'"),
    ("unknown phase", GOOD.replace('["plan", "simulate"]', '["plan", "simulte"]'), r"unknown phase 'simulte'"),
    ("no plan phase", GOOD.replace('["plan", "simulate"]', '["simulate"]'), r"lack 'plan'"),
    ("no workflow", 'name = "t"\n[[planner]]\nname = "heft"\n', r"lists no workflow"),
    ("no planner", 'name = "t"\n[[workflow]]\nspec = "gen:chain"\n', r"lists no planner"),
    ("duplicate planner label", GOOD + '[[planner]]\nname = "heft"\n', r"two planners are labelled 'heft'"),
    ("unknown catalog", 'catalog = "aws"\n' + GOOD, r"catalog: unknown catalog 'aws'"),
    ("bad scale", GOOD.replace('spec = "gen:chain:length=3"', 'spec = "gen:chain"\nscale = -1'),
     r"workflow\[0\]\.scale must be a positive number"),
    ("bad redis url", GOOD + '[execute]\nredis_url = "localhost:6379"\n', r"execute\.redis_url .* is not a Redis URL"),
    ("scale in executor settings", GOOD + "[execute]\nsettings = { scale = 0.1 }\n", r"execute\.settings\.scale"),
    ("missing platform file", GOOD + '[simulate]\nplatform = "p.toml"\n', r"simulate\.platform: no such platform file"),
    ("replications wrong type", GOOD + "[simulate]\nreplications = 1.5\n", r"simulate\.replications must be an integer"),
    ("invalid TOML", "name = \n", r"not valid TOML"),
    ("unknown profiling layout", GOOD + '[profile]\nworkers = "all"\n', r"profile\.workers = 'all' is not a worker layout"),
]


@pytest.mark.parametrize("text, pattern", [(t, p) for _, t, p in BAD], ids=[n for n, _, _ in BAD])
def test_bad_config_gives_one_clear_message(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(write(tmp_path, text))
    assert info.value.fix, "every config error says how to fix it"
    assert "\n" not in info.value.one_line()


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD.replace('"p95"', '"p101"'))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "slas[1]" in err and "fix:" in err
    assert not (tmp_path / "out").exists(), "nothing is written for a bad config"


def test_parse_config_from_a_dict() -> None:
    config = parse_config({"workflow": [{"spec": "gen:chain:length=2", "name": "c"}], "planner": [{"name": "uniform",
                           "params": {"profile": "small"}}]}, name="inline")
    assert config.name == "inline" and config.planners[0].make().profile == "small"


def test_scaled_workflow_scales_replay_tasks_only() -> None:
    replay = load_workflow(REPO / "experiments" / "data" / "helloworld-chain-5-chameleon.json")
    scaled = scaled_workflow(replay, 0.01, 0.5)
    for t in replay.tasks:
        assert scaled.task(t.id).runtime_s == pytest.approx(t.runtime_s * 0.01)
    assert scaled.total_edge_bytes() == pytest.approx(replay.total_edge_bytes() * 0.5, rel=1e-3)
    assert scaled.structure_hash() == replay.structure_hash() or len(scaled) == len(replay)
    code = load_workflow("gen:five_branches:size=10,rounds=1")
    assert [t.runtime_s for t in scaled_workflow(code, 0.01).tasks] == [t.runtime_s for t in code.tasks]
    assert scaled_workflow(replay) is replay
