"""Experiment configs: one TOML file says what to run, validated before anything runs.

A researcher writes the matrix (workflows x planners x SLAs x repetitions), the
catalog, and which phases to run; a mistake is caught here, with the key that is
wrong and how to fix it, rather than half-way through an hour of real runs.

Layout (every key but ``[[workflow]]`` and ``[[planner]]`` is optional)::

    name = "quickstart"                 # default: the file's stem
    phases = ["profile", "plan", "simulate", "execute"]   # default: plan, simulate
    catalog = "local"                   # built-in name or a catalog TOML (relative to this file)
    slas = ["mean", "p95"]              # default: ["mean"]
    repetitions = 1                     # of every cell
    seed = 0                            # cell r uses seed + r

    [[workflow]]
    spec = "gen:five_branches"          # gen:NAME:k=v, WfFormat/planlab JSON or file.py:name
    name = "five_branches"              # label (default: the workflow's name)
    scale = 0.005                       # replay tasks' runtimes x scale (default: [execute] scale)
    data_scale = 1.0                    # edge and output bytes x data_scale

    [[planner]]
    name = "uniform"                    # a registered or installed planner, file.py:Class or module:Class
    label = "uniform-large"             # default: name
    params = { profile = "large" }

    [profile]   repetitions = 3         # real runs per workflow and catalog profile (fit on their median)
    [simulate]  replications = 200, seed, processes, platform = "file.toml", params = {...}
    [execute]   redis_url = "redis://...", scale = 1.0, settings = {...}
    [run]       backend = "ray", address = "HOST:6379", host_resource = "planlab_host", real_cells_per_host = 1

Paths are relative to the config file, so a config and its data move together.
Each section is checked by :mod:`experiments.config_sections`, each single value by
:mod:`experiments.config_values`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from experiments.config_sections import (DEFAULT_PHASES, ExecuteSettings, PlannerSpec, RunSettings, SimulateSettings,
                                         WorkflowSpec, parse_catalog, parse_execute, parse_phases, parse_planners,
                                         parse_profile_workers, parse_run, parse_simulate, parse_workflows)
from experiments.config_values import (MAX_REPETITIONS, MAX_SEED, bounded_int, check_keys, is_python_spec, subtable,
                                       typed_value)
from planning.errors import ConfigError, PlanlabError
from planning.profiles import Catalog
from planning.sla import SLA
from planning.sources.loading import load_workflow
from planning.workflow import Workflow

_TOP_KEYS = {"name", "description", "phases", "catalog", "slas", "repetitions", "seed", "workflow", "planner",
             "profile", "simulate", "execute", "run"}
_PROFILE_KEYS = {"repetitions", "workers"}
#: Real profiling runs per (workflow, profile) unless ``[profile] repetitions`` says: three, so the cost
#: model is fitted on a median that one disturbed run cannot move (issue 13, honest profiling).
DEFAULT_PROFILE_REPETITIONS = 3


@dataclass
class ExperimentConfig:
    """A validated experiment config (see the module docstring for the TOML layout)."""

    name: str
    path: Path | None
    text: str
    phases: tuple[str, ...]
    catalog_spec: str
    catalog: Catalog
    slas: tuple[SLA, ...]
    repetitions: int
    seed: int
    workflows: tuple[WorkflowSpec, ...]
    planners: tuple[PlannerSpec, ...]
    profile_repetitions: int = DEFAULT_PROFILE_REPETITIONS
    profile_workers: str = "single"      # the uniform planner's layout in profiling runs (see the runner)
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
    execute: ExecuteSettings = field(default_factory=ExecuteSettings)
    run: RunSettings = field(default_factory=RunSettings)   # where the cells run; not in the hash (same results)
    description: str = ""
    _loaded: dict[str, Workflow] = field(default_factory=dict, repr=False)

    def has(self, phase: str) -> bool:
        return phase in self.phases

    def workflow(self, label: str) -> Workflow:
        """The workflow labelled ``label``, loaded once and scaled as configured."""
        if label not in self._loaded:
            spec = next(w for w in self.workflows if w.label == label)
            self._loaded[label] = scaled_workflow(load_workflow(spec.spec), spec.scale, spec.data_scale)
        return self._loaded[label]

    def to_dict(self) -> dict[str, Any]:
        """The normalised config (resolved paths, canonical SLA names): what the hash covers."""
        return {"name": self.name, "phases": list(self.phases), "catalog": self.catalog.to_dict(),
                "slas": [s.name for s in self.slas], "repetitions": self.repetitions, "seed": self.seed,
                "workflows": [dataclasses.asdict(w) for w in self.workflows],
                "planners": [{"label": p.label, "name": p.name, "params": dict(p.params),
                              **({"optimizations": list(p.optimizations)} if p.optimizations else {})}
                             for p in self.planners],
                "profile": {"repetitions": self.profile_repetitions, "workers": self.profile_workers},
                "simulate": _plain(dataclasses.asdict(self.simulate)),
                "execute": _plain(dataclasses.asdict(self.execute))}

    @property
    def hash(self) -> str:
        """SHA-256 over the normalised config and the bytes of every file it reads."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode())
        for path in self._input_files():
            digest.update(str(path).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def _input_files(self) -> list[Path]:
        files = []
        for w in self.workflows:
            if w.spec.startswith("gen:"):
                continue
            files.append(Path(w.spec.rpartition(":")[0] if is_python_spec(w.spec) else w.spec))
        if self.simulate.platform:
            files.append(Path(self.simulate.platform))
        files.extend(Path(p.name.rpartition(":")[0]) for p in self.planners if is_python_spec(p.name))
        return [f for f in files if f.is_file()]


# ====================================================================== loading
def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config; any mistake is one :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist",
                          "give the path of an experiment TOML, e.g. experiments/configs/quickstart.toml") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc}", "check the file's permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}", "fix the TOML syntax at that line") from None
    return parse_config(data, base_dir=path.resolve().parent, name=path.stem, text=text, path=path.resolve())


def parse_config(data: Mapping[str, Any], *, base_dir: str | Path = ".", name: str = "experiment",
                 text: str | None = None, path: Path | None = None) -> ExperimentConfig:
    """Validate a config already read into a dict (paths relative to ``base_dir``)."""
    base = Path(base_dir)
    check_keys(data, _TOP_KEYS, "the config's top level")
    exp_name = typed_value(data, "name", str, "name", name)
    if not exp_name.strip() or any(c in exp_name for c in "/\\"):
        raise ConfigError(f"name {exp_name!r} is not usable as a directory name", 'use e.g. name = "quickstart"')
    phases = parse_phases(data.get("phases", list(DEFAULT_PHASES)))
    catalog_spec = typed_value(data, "catalog", str, "catalog", "local")
    catalog = parse_catalog(catalog_spec, base)
    raw_slas = data.get("slas", ["mean"])
    if not isinstance(raw_slas, list) or not raw_slas:
        raise ConfigError(f"slas must be a non-empty list of strings, got {raw_slas!r}", 'write slas = ["mean", "p95"]')
    slas = []
    for i, raw in enumerate(raw_slas):
        try:
            slas.append(SLA.parse(raw))
        except PlanlabError as exc:
            raise ConfigError(f"slas[{i}]: {exc.what}", exc.fix) from None
    if len({s.name for s in slas}) != len(slas):
        raise ConfigError(f"slas lists the same statistic twice: {raw_slas}", "list each SLA once")
    repetitions = bounded_int(data, "repetitions", "repetitions", 1, 1, MAX_REPETITIONS)
    seed = bounded_int(data, "seed", "seed", 0, 0, MAX_SEED)
    execute = parse_execute(data.get("execute", {}))
    workflows = parse_workflows(data.get("workflow"), base, execute.scale)
    planners = parse_planners(data.get("planner"), base)
    profile = subtable(data, "profile")
    check_keys(profile, _PROFILE_KEYS, "[profile]")
    simulate = parse_simulate(data.get("simulate", {}), base)
    config = ExperimentConfig(
        name=exp_name, path=path, text=text if text is not None else json.dumps(dict(data), default=str),
        phases=phases, catalog_spec=catalog_spec, catalog=catalog, slas=tuple(slas), repetitions=repetitions,
        seed=seed, workflows=workflows, planners=planners,
        profile_repetitions=bounded_int(profile, "repetitions", "profile.repetitions", DEFAULT_PROFILE_REPETITIONS, 1,
                                         MAX_REPETITIONS),
        profile_workers=parse_profile_workers(profile),
        simulate=simulate, execute=execute, run=parse_run(data.get("run", {})),
        description=typed_value(data, "description", str, "description", ""))
    for i, w in enumerate(config.workflows):
        try:
            config.workflow(w.label)
        except PlanlabError as exc:
            raise ConfigError(f"workflow[{i}] ({w.label}): {exc.what}", exc.fix) from None
    return config


# ====================================================================== scaling
def scaled_workflow(workflow: Workflow, scale: float = 1.0, data_scale: float = 1.0) -> Workflow:
    """A copy whose replay tasks (no code) run ``scale`` times as long and move ``data_scale`` times the bytes.

    Scaling the workflow itself, rather than only telling the executor, keeps the
    plan, the simulation and the real run about the same workflow: recorded
    WfFormat runtimes of minutes become a run of seconds everywhere at once.
    Tasks with code keep their runtime hints: their real duration is their code's.
    """
    if scale == 1.0 and data_scale == 1.0:
        return workflow
    out = Workflow(workflow.name, {**workflow.metadata, "scale": scale, "data_scale": data_scale})
    for t in workflow.tasks:
        changes: dict[str, Any] = {}
        if not t.executable and t.runtime_s is not None:
            changes["runtime_s"] = t.runtime_s * scale
        if t.output_bytes is not None and data_scale != 1.0:
            changes["output_bytes"] = int(round(t.output_bytes * data_scale))
        out.add_task(t.with_(**changes) if changes else t)
    for parent, child, nbytes in workflow.edges():
        out.add_edge(parent, child, int(round(nbytes * data_scale)))
    return out.validate()


# ====================================================================== helpers
def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
