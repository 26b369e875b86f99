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

Paths are relative to the config file, so a config and its data move together.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from planning.errors import ConfigError, PlanlabError
from planning.planners import default_label, get_planner, planner_names, resolve_planner, resolve_protocol
from planning.profiles import Catalog, load_catalog
from planning.sla import SLA
from planning.sources.loading import load_workflow
from planning.workflow import Workflow

PHASES = ("profile", "plan", "simulate", "execute")
DEFAULT_PHASES = ("plan", "simulate")
_TOP_KEYS = {"name", "description", "phases", "catalog", "slas", "repetitions", "seed", "workflow", "planner",
             "profile", "simulate", "execute"}
_WORKFLOW_KEYS = {"spec", "name", "scale", "data_scale"}
_PLANNER_KEYS = {"name", "label", "params", "protocol"}
_PROFILE_KEYS = {"repetitions", "workers"}
#: Real profiling runs per (workflow, profile) unless ``[profile] repetitions`` says: three, so the cost
#: model is fitted on a median that one disturbed run cannot move (issue 13, honest profiling).
DEFAULT_PROFILE_REPETITIONS = 3
_SIMULATE_KEYS = {"replications", "seed", "processes", "platform", "params"}
_EXECUTE_KEYS = {"redis_url", "scale", "settings"}
_URL_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class WorkflowSpec:
    """One workflow of the matrix: how to load it and how to scale its replay tasks."""

    label: str
    spec: str                 # resolved: file paths are absolute
    scale: float = 1.0
    data_scale: float = 1.0


@dataclass(frozen=True)
class PlannerSpec:
    """One planner of the matrix: a registered name with parameters, under a unique label."""

    label: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: the worker protocol both engines interpret for this planner's plans (a name, ``module:Class`` or
    #: ``file.py:Class``; ``default``: the plan's own)
    protocol: str = "default"

    def make(self):
        return get_planner(self.name, **dict(self.params))

    def make_protocol(self, workflow: Any, plan: Any) -> Any:
        """The protocol instance for ``plan`` (None: the engines' default)."""
        if self.protocol == "default":
            return None
        return resolve_protocol(self.protocol).for_plan(workflow, plan)


@dataclass(frozen=True)
class SimulateSettings:
    """Monte Carlo replications (for percentile SLAs) and the platform the simulator models."""

    replications: int = 200
    seed: int | None = None
    processes: int | None = 1
    platform: str | None = None            # a platform TOML (absolute path)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecuteSettings:
    """Where the executor's Redis is (None: embedded) and its settings."""

    redis_url: str | None = None
    scale: float = 1.0
    settings: Mapping[str, Any] = field(default_factory=dict)


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
                "planners": [{"label": p.label, "name": p.name, "params": dict(p.params)} for p in self.planners],
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
            files.append(Path(w.spec.rpartition(":")[0] if _is_python_spec(w.spec) else w.spec))
        if self.simulate.platform:
            files.append(Path(self.simulate.platform))
        files.extend(Path(p.name.rpartition(":")[0]) for p in self.planners if _is_python_spec(p.name))
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
    _check_keys(data, _TOP_KEYS, "the config's top level")
    exp_name = _typed(data, "name", str, "name", name)
    if not exp_name.strip() or any(c in exp_name for c in "/\\"):
        raise ConfigError(f"name {exp_name!r} is not usable as a directory name", 'use e.g. name = "quickstart"')
    phases = _phases(data.get("phases", list(DEFAULT_PHASES)))
    catalog_spec = _typed(data, "catalog", str, "catalog", "local")
    catalog = _catalog(catalog_spec, base)
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
    repetitions = _bounded_int(data, "repetitions", "repetitions", 1, 1, MAX_REPETITIONS)
    seed = _bounded_int(data, "seed", "seed", 0, 0, MAX_SEED)
    execute = _execute(data.get("execute", {}))
    workflows = _workflows(data.get("workflow"), base, execute.scale)
    planners = _planners(data.get("planner"), base)
    profile = _table(data, "profile")
    _check_keys(profile, _PROFILE_KEYS, "[profile]")
    simulate = _simulate(data.get("simulate", {}), base)
    config = ExperimentConfig(
        name=exp_name, path=path, text=text if text is not None else json.dumps(dict(data), default=str),
        phases=phases, catalog_spec=catalog_spec, catalog=catalog, slas=tuple(slas), repetitions=repetitions,
        seed=seed, workflows=workflows, planners=planners,
        profile_repetitions=_bounded_int(profile, "repetitions", "profile.repetitions", DEFAULT_PROFILE_REPETITIONS, 1,
                                         MAX_REPETITIONS),
        profile_workers=_profile_workers(profile),
        simulate=simulate, execute=execute, description=_typed(data, "description", str, "description", ""))
    for i, w in enumerate(config.workflows):
        try:
            config.workflow(w.label)
        except PlanlabError as exc:
            raise ConfigError(f"workflow[{i}] ({w.label}): {exc.what}", exc.fix) from None
    return config


# ====================================================================== limits
#: Upper bounds of the matrix's counts: beyond them a typo would run for days (documented in the README).
MAX_REPETITIONS = 10_000
MAX_REPLICATIONS = 1_000_000
MAX_SEED = 2**63 - 1
#: Planner parameters that are durations and must be positive.
_POSITIVE_PARAMS = ("deadline", "budget")


def check_planner_params(params: Mapping[str, Any], where: str) -> None:
    """Planner parameters: numbers finite (durations positive), text not empty, before any planner sees them."""
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}.{key} = {value} is not a finite number", f"give {key} a finite number")
        if key in _POSITIVE_PARAMS and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{where}.{key} must be a positive number of seconds, got {value!r}",
                              f"set {key} to e.g. 60.0")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{where}.{key} is empty", f"give {key} a value or leave it out")


def _bounded_int(table: Mapping[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = _typed(table, key, int, where, default)
    if value is not None and value < low:
        raise ConfigError(f"{where} must be at least {low}, got {value}", f"set {key} = {low} or more")
    if value is not None and value > high:
        raise ConfigError(f"{where} must be at most {high:,} (a documented limit), got {value:,}",
                          f"set {key} to at most {high:,}")
    return value


# ====================================================================== sections
def _profile_workers(profile: Mapping[str, Any]) -> str:
    from planning.planners.uniform import WORKER_LAYOUTS
    value = _typed(profile, "workers", str, "profile.workers", "single")
    if value not in WORKER_LAYOUTS:
        raise ConfigError(f"profile.workers = {value!r} is not a worker layout",
                          f"use one of: {', '.join(WORKER_LAYOUTS)} (single: each task measured alone)")
    return value


def _phases(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw) or not raw:
        raise ConfigError(f"phases must be a non-empty list of strings, got {raw!r}",
                          f"write e.g. phases = {json.dumps(list(PHASES))}")
    for p in raw:
        if p not in PHASES:
            raise ConfigError(f"phases: unknown phase {p!r}{_did_you_mean(p, PHASES)}",
                              f"use some of {', '.join(PHASES)}")
    if "plan" not in raw:
        raise ConfigError(f"phases {raw} lack 'plan', which every other phase needs", 'add "plan" to phases')
    return tuple(p for p in PHASES if p in raw)


def _catalog(spec: str, base: Path) -> Catalog:
    if not spec.strip():
        raise ConfigError("catalog is empty", 'write catalog = "local", "lambda" or the path of a catalog TOML')
    try:
        if spec.endswith(".toml"):
            return load_catalog(str(_resolve(spec, base)))
        return load_catalog(spec)
    except PlanlabError as exc:
        raise ConfigError(f"catalog: {exc.what}", exc.fix) from None


def _workflows(raw: Any, base: Path, default_scale: float) -> tuple[WorkflowSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("the config lists no workflow",
                          'add a [[workflow]] table with spec = "gen:five_branches" (or a WfFormat file)')
    out: list[WorkflowSpec] = []
    for i, entry in enumerate(raw):
        where = f"workflow[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a table", 'write [[workflow]] then spec = "..." on the next line')
        _check_keys(entry, _WORKFLOW_KEYS, f"[[workflow]] #{i}")
        if "spec" not in entry:
            raise ConfigError(f"{where} has no spec", 'give spec = "gen:NAME", a WfFormat file or "file.py:name"')
        spec = _typed(entry, "spec", str, f"{where}.spec", "")
        resolved = _resolve_workflow_spec(spec, base, where)
        label = _typed(entry, "name", str, f"{where}.name", "") or _default_label(spec)
        scale = _positive_float(entry, "scale", f"{where}.scale", default_scale)
        data_scale = _positive_float(entry, "data_scale", f"{where}.data_scale", 1.0)
        out.append(WorkflowSpec(label, resolved, scale, data_scale))
    _unique([w.label for w in out], "workflow", "give each [[workflow]] a distinct name")
    return tuple(out)


def _resolve_workflow_spec(spec: str, base: Path, where: str) -> str:
    if not spec.strip():
        raise ConfigError(f"{where}.spec is empty", 'give spec = "gen:NAME", a WfFormat file or "file.py:name"')
    if spec.startswith("gen:"):
        return spec
    if _is_python_spec(spec):
        file_part, _, attr = spec.rpartition(":")
        path = _resolve(file_part, base)
        if not path.is_file():
            raise ConfigError(f"{where}.spec: no such Python file {str(path)!r}",
                              "paths are relative to the config file; check the path")
        return f"{path}:{attr}"
    path = _resolve(spec, base)
    if not path.is_file():
        raise ConfigError(f"{where}.spec: no such workflow file {str(path)!r}",
                          "paths are relative to the config file; check the path, or write gen:NAME for a generator")
    return str(path)


def _planners(raw: Any, base: Path) -> tuple[PlannerSpec, ...]:
    """The [[planner]] tables; each name goes through the planner registry's one resolver.

    A ``path/file.py:Class`` name is resolved against the config's folder and kept
    absolute, so the config and its planner move together (and the file is hashed).
    """
    if not isinstance(raw, list) or not raw:
        raise ConfigError("the config lists no planner", 'add a [[planner]] table with name = "heft"')
    out: list[PlannerSpec] = []
    for i, entry in enumerate(raw):
        where = f"planner[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a table", 'write [[planner]] then name = "..." on the next line')
        _check_keys(entry, _PLANNER_KEYS, f"[[planner]] #{i}")
        if "name" not in entry:
            raise ConfigError(f"{where} has no name", f"set name to one of: {', '.join(planner_names())}")
        name = _typed(entry, "name", str, f"{where}.name", "")
        if _is_python_spec(name):
            file_part, _, attr = name.rpartition(":")
            name = f"{_resolve(file_part, base)}:{attr}"
        try:
            cls = resolve_planner(name)
        except PlanlabError as exc:
            raise ConfigError(f"{where}.name: {exc.what}", exc.fix) from None
        params = _typed(entry, "params", dict, f"{where}.params", {})
        check_planner_params(params, f"{where}.params")
        try:
            get_planner(name, **params)
        except PlanlabError as exc:
            raise ConfigError(f"{where}.params: {exc.what}", exc.fix) from None
        label = _typed(entry, "label", str, f"{where}.label", "") or default_label(name, cls)
        protocol = _typed(entry, "protocol", str, f"{where}.protocol", "default") or "default"
        if _is_python_spec(protocol):
            file_part, _, attr = protocol.rpartition(":")
            protocol = f"{_resolve(file_part, base)}:{attr}"
        try:
            resolve_protocol(protocol)
        except PlanlabError as exc:
            raise ConfigError(f"{where}.protocol: {exc.what}", exc.fix) from None
        out.append(PlannerSpec(label, name, dict(params), protocol))
    _unique([p.label for p in out], "planner", "give planners of the same name distinct labels (label = \"...\")")
    return tuple(out)


def _simulate(raw: Any, base: Path) -> SimulateSettings:
    if not isinstance(raw, dict):
        raise ConfigError("simulate must be a table", "write [simulate] with replications = N")
    _check_keys(raw, _SIMULATE_KEYS, "[simulate]")
    replications = _bounded_int(raw, "replications", "simulate.replications", 200, 1, MAX_REPLICATIONS)
    seed = _bounded_int(raw, "seed", "simulate.seed", None, 0, MAX_SEED)
    processes = _bounded_int(raw, "processes", "simulate.processes", 1, 1, os.cpu_count() or 1)
    platform = _typed(raw, "platform", str, "simulate.platform", None)
    if platform is not None:
        resolved = _resolve(platform, base)
        if not resolved.is_file():
            raise ConfigError(f"simulate.platform: no such platform file {str(resolved)!r}",
                              "paths are relative to the config file; write one with 'planlab calibrate --out'")
        platform = str(resolved)
    params = _typed(raw, "params", dict, "simulate.params", {})
    _check_dataclass_keys(params, "simulator", "Platform", "simulate.params")
    return SimulateSettings(replications, seed, processes, platform, dict(params))


def _execute(raw: Any) -> ExecuteSettings:
    if not isinstance(raw, dict):
        raise ConfigError("execute must be a table", "write [execute] with redis_url or settings")
    _check_keys(raw, _EXECUTE_KEYS, "[execute]")
    url = _typed(raw, "redis_url", str, "execute.redis_url", None) or None
    if url is not None and not url.startswith(_URL_SCHEMES):
        raise ConfigError(f"execute.redis_url {url!r} is not a Redis URL",
                          "write redis://[:password@]host:port/0 (or rediss://, unix://), or omit it for the embedded server")
    scale = _positive_float(raw, "scale", "execute.scale", 1.0)
    settings = _typed(raw, "settings", dict, "execute.settings", {})
    for key, instead in (("scale", "scale"), ("bytes_scale", "data_scale")):
        if key in settings:
            raise ConfigError(f"execute.settings.{key} would scale the real run but not the plan and the simulation",
                              f"write {instead} in a [[workflow]] table (or scale under [execute] for every workflow)")
    _check_dataclass_keys(settings, "executor", "ExecutorSettings", "execute.settings")
    _check_executor_settings(settings)
    return ExecuteSettings(url, scale, dict(settings))


def _check_executor_settings(settings: Mapping[str, Any]) -> None:
    """Build the executor's settings once, so a bad value fails here, not half-way through the runs."""
    try:
        from executor.settings import ExecutorSettings
    except ImportError:
        return
    try:
        ExecutorSettings(**dict(settings))
    except PlanlabError as exc:
        raise ConfigError(f"execute.settings: {exc.what}", exc.fix) from None
    except TypeError as exc:
        raise ConfigError(f"execute.settings: {exc}", "check the settings' names and types") from None


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
def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in {where}{_did_you_mean(key, allowed)}",
                              f"use only {', '.join(sorted(allowed))}")


def _check_dataclass_keys(params: Mapping[str, Any], module: str, cls_name: str, where: str) -> None:
    """Unknown keys of an engine's settings, named before anything runs (skipped if the engine is absent)."""
    try:
        cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
    except (ImportError, AttributeError):
        return
    if not dataclasses.is_dataclass(cls):
        return
    names = {f.name for f in dataclasses.fields(cls)}
    for key in params:
        if key not in names:
            raise ConfigError(f"unknown key {key!r} in {where}{_did_you_mean(key, names)}",
                              f"use only {', '.join(sorted(names))}")


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table, got {type(value).__name__}", f"write [{key}] on its own line")
    return value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "a table", list: "a list"}


def _typed(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {type(value).__name__} {value!r}",
                          f"write {where.rpartition('.')[2]} as {_TYPE_NAMES.get(kind, kind.__name__)}")
    return value


def _positive_int(table: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = _typed(table, key, int, where, default)
    if value < 1:
        raise ConfigError(f"{where} must be at least 1, got {value}", f"set {key} = 1 or more")
    return value


def _positive_float(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where} must be a positive number, got {value!r}", f"set {key} to e.g. 0.01 or 1.0")
    return float(value)


def _unique(labels: list[str], what: str, fix: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise ConfigError(f"two {what}s are labelled {label!r}", fix)
        seen.add(label)


def _resolve(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _is_python_spec(spec: str) -> bool:
    file_part, sep, _ = spec.rpartition(":")
    return bool(sep) and file_part.endswith(".py")


def _default_label(spec: str) -> str:
    if spec.startswith("gen:"):
        return spec.split(":")[1]
    if _is_python_spec(spec):
        return spec.rpartition(":")[2]
    return Path(spec).stem


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
