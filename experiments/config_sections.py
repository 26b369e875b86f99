"""The sections of an experiment config: its phases, catalog, workflows, planners, ``[simulate]`` and ``[execute]``.

Each parser validates one section into a frozen value (:class:`WorkflowSpec`,
:class:`PlannerSpec`, :class:`SimulateSettings`, :class:`ExecuteSettings`), resolving
paths against the config's folder; :func:`experiments.config.parse_config` puts them
together.  The engines' own settings classes name the keys they accept.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from executor.settings import ExecutorSettings
from experiments.config_values import (MAX_REPLICATIONS, MAX_SEED, bounded_int, check_keys, check_planner_params,
                                       check_unique, did_you_mean, is_python_spec, positive_float, resolve_path,
                                       typed_value)
from planning.errors import ConfigError, PlanlabError
from planning.planners import Planner, default_label, get_planner, planner_names, resolve_planner, resolve_protocol
from planning.planners.uniform import WORKER_LAYOUTS
from planning.profiles import Catalog, load_catalog
from simulator.platform import Platform

PHASES = ("profile", "plan", "simulate", "execute")
DEFAULT_PHASES = ("plan", "simulate")
_WORKFLOW_KEYS = {"spec", "name", "scale", "data_scale"}
_PLANNER_KEYS = {"name", "label", "params", "protocol", "optimizations"}
_SIMULATE_KEYS = {"replications", "seed", "processes", "platform", "params"}
_EXECUTE_KEYS = {"redis_url", "scale", "settings"}
_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")


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
    #: the optimizations applied to this planner's plans (:mod:`planning.protocol.optimizations`), in order
    optimizations: tuple[str, ...] = ()

    def make(self) -> Planner:
        """A new instance of the planner with its parameters."""
        return get_planner(self.name, **dict(self.params))


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


def parse_profile_workers(profile: Mapping[str, Any]) -> str:
    value = typed_value(profile, "workers", str, "profile.workers", "single")
    if value not in WORKER_LAYOUTS:
        raise ConfigError(f"profile.workers = {value!r} is not a worker layout",
                          f"use one of: {', '.join(WORKER_LAYOUTS)} (single: each task measured alone)")
    return value


def parse_phases(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw) or not raw:
        raise ConfigError(f"phases must be a non-empty list of strings, got {raw!r}",
                          f"write e.g. phases = {json.dumps(list(PHASES))}")
    for p in raw:
        if p not in PHASES:
            raise ConfigError(f"phases: unknown phase {p!r}{did_you_mean(p, PHASES)}",
                              f"use some of {', '.join(PHASES)}")
    if "plan" not in raw:
        raise ConfigError(f"phases {raw} lack 'plan', which every other phase needs", 'add "plan" to phases')
    return tuple(p for p in PHASES if p in raw)


def parse_catalog(spec: str, base: Path) -> Catalog:
    if not spec.strip():
        raise ConfigError("catalog is empty", 'write catalog = "local", "lambda" or the path of a catalog TOML')
    try:
        if spec.endswith(".toml"):
            return load_catalog(str(resolve_path(spec, base)))
        return load_catalog(spec)
    except PlanlabError as exc:
        raise ConfigError(f"catalog: {exc.what}", exc.fix) from None


def parse_workflows(raw: Any, base: Path, default_scale: float) -> tuple[WorkflowSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("the config lists no workflow",
                          'add a [[workflow]] table with spec = "gen:five_branches" (or a WfFormat file)')
    out: list[WorkflowSpec] = []
    for i, entry in enumerate(raw):
        where = f"workflow[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a table", 'write [[workflow]] then spec = "..." on the next line')
        check_keys(entry, _WORKFLOW_KEYS, f"[[workflow]] #{i}")
        if "spec" not in entry:
            raise ConfigError(f"{where} has no spec", 'give spec = "gen:NAME", a WfFormat file or "file.py:name"')
        spec = typed_value(entry, "spec", str, f"{where}.spec", "")
        resolved = _resolve_workflow_spec(spec, base, where)
        label = typed_value(entry, "name", str, f"{where}.name", "") or _default_label(spec)
        scale = positive_float(entry, "scale", f"{where}.scale", default_scale)
        data_scale = positive_float(entry, "data_scale", f"{where}.data_scale", 1.0)
        out.append(WorkflowSpec(label, resolved, scale, data_scale))
    check_unique([w.label for w in out], "workflow", "give each [[workflow]] a distinct name")
    return tuple(out)


def _resolve_workflow_spec(spec: str, base: Path, where: str) -> str:
    if not spec.strip():
        raise ConfigError(f"{where}.spec is empty", 'give spec = "gen:NAME", a WfFormat file or "file.py:name"')
    if spec.startswith("gen:"):
        return spec
    if is_python_spec(spec):
        file_part, _, attr = spec.rpartition(":")
        path = resolve_path(file_part, base)
        if not path.is_file():
            raise ConfigError(f"{where}.spec: no such Python file {str(path)!r}",
                              "paths are relative to the config file; check the path")
        return f"{path}:{attr}"
    path = resolve_path(spec, base)
    if not path.is_file():
        raise ConfigError(f"{where}.spec: no such workflow file {str(path)!r}",
                          "paths are relative to the config file; check the path, or write gen:NAME for a generator")
    return str(path)


def parse_planners(raw: Any, base: Path) -> tuple[PlannerSpec, ...]:
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
        check_keys(entry, _PLANNER_KEYS, f"[[planner]] #{i}")
        if "name" not in entry:
            raise ConfigError(f"{where} has no name", f"set name to one of: {', '.join(planner_names())}")
        name = typed_value(entry, "name", str, f"{where}.name", "")
        if is_python_spec(name):
            file_part, _, attr = name.rpartition(":")
            name = f"{resolve_path(file_part, base)}:{attr}"
        try:
            cls = resolve_planner(name)
        except PlanlabError as exc:
            raise ConfigError(f"{where}.name: {exc.what}", exc.fix) from None
        params = typed_value(entry, "params", dict, f"{where}.params", {})
        check_planner_params(params, f"{where}.params")
        try:
            get_planner(name, **params)
        except PlanlabError as exc:
            raise ConfigError(f"{where}.params: {exc.what}", exc.fix) from None
        label = typed_value(entry, "label", str, f"{where}.label", "") or default_label(name, cls)
        protocol = typed_value(entry, "protocol", str, f"{where}.protocol", "default") or "default"
        if is_python_spec(protocol):
            file_part, _, attr = protocol.rpartition(":")
            protocol = f"{resolve_path(file_part, base)}:{attr}"
        try:
            resolve_protocol(protocol)
        except PlanlabError as exc:
            raise ConfigError(f"{where}.protocol: {exc.what}", exc.fix) from None
        out.append(PlannerSpec(label, name, dict(params), protocol, parse_optimizations(entry, where)))
    check_unique([p.label for p in out], "planner", "give planners of the same name distinct labels (label = \"...\")")
    return tuple(out)


def parse_optimizations(entry: dict, where: str) -> tuple[str, ...]:
    """A planner's ``optimizations = ["retention", ...]``: known names, each once."""
    from planning.protocol.optimizations import check_optimizations

    names = typed_value(entry, "optimizations", list, f"{where}.optimizations", [])
    if not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}.optimizations must be a list of names", 'write e.g. optimizations = ["retention"]')
    try:
        return check_optimizations(names)
    except PlanlabError as exc:
        raise ConfigError(f"{where}.optimizations: {exc.what}", exc.fix) from None


def parse_simulate(raw: Any, base: Path) -> SimulateSettings:
    if not isinstance(raw, dict):
        raise ConfigError("simulate must be a table", "write [simulate] with replications = N")
    check_keys(raw, _SIMULATE_KEYS, "[simulate]")
    replications = bounded_int(raw, "replications", "simulate.replications", 200, 1, MAX_REPLICATIONS)
    seed = bounded_int(raw, "seed", "simulate.seed", None, 0, MAX_SEED)
    processes = bounded_int(raw, "processes", "simulate.processes", 1, 1, os.cpu_count() or 1)
    platform = typed_value(raw, "platform", str, "simulate.platform", None)
    if platform is not None:
        resolved = resolve_path(platform, base)
        if not resolved.is_file():
            raise ConfigError(f"simulate.platform: no such platform file {str(resolved)!r}",
                              "paths are relative to the config file; write one with 'planlab calibrate --out'")
        platform = str(resolved)
    params = typed_value(raw, "params", dict, "simulate.params", {})
    _check_dataclass_keys(params, Platform, "simulate.params")
    return SimulateSettings(replications, seed, processes, platform, dict(params))


def parse_execute(raw: Any) -> ExecuteSettings:
    if not isinstance(raw, dict):
        raise ConfigError("execute must be a table", "write [execute] with redis_url or settings")
    check_keys(raw, _EXECUTE_KEYS, "[execute]")
    url = typed_value(raw, "redis_url", str, "execute.redis_url", None) or None
    if url is not None and not url.startswith(_URL_SCHEMES):
        raise ConfigError(f"execute.redis_url {url!r} is not a Redis URL",
                          "write redis://[:password@]host:port/0 (or rediss://, unix://, redis+cluster://host:port), "
                          "or omit it for the embedded server")
    scale = positive_float(raw, "scale", "execute.scale", 1.0)
    settings = typed_value(raw, "settings", dict, "execute.settings", {})
    for key, instead in (("scale", "scale"), ("bytes_scale", "data_scale")):
        if key in settings:
            raise ConfigError(f"execute.settings.{key} would scale the real run but not the plan and the simulation",
                              f"write {instead} in a [[workflow]] table (or scale under [execute] for every workflow)")
    _check_dataclass_keys(settings, ExecutorSettings, "execute.settings")
    _check_executor_settings(settings)
    return ExecuteSettings(url, scale, dict(settings))


def _check_executor_settings(settings: Mapping[str, Any]) -> None:
    """Build the executor's settings once, so a bad value fails here, not half-way through the runs."""
    try:
        ExecutorSettings(**dict(settings))
    except PlanlabError as exc:
        raise ConfigError(f"execute.settings: {exc.what}", exc.fix) from None
    except TypeError as exc:
        raise ConfigError(f"execute.settings: {exc}", "check the settings' names and types") from None


def _check_dataclass_keys(params: Mapping[str, Any], cls: type, where: str) -> None:
    """Unknown keys of an engine's settings (a dataclass's fields), named before anything runs."""
    names = {f.name for f in dataclasses.fields(cls)}
    for key in params:
        if key not in names:
            raise ConfigError(f"unknown key {key!r} in {where}{did_you_mean(key, names)}",
                              f"use only {', '.join(sorted(names))}")


def _default_label(spec: str) -> str:
    if spec.startswith("gen:"):
        return spec.split(":")[1]
    if is_python_spec(spec):
        return spec.rpartition(":")[2]
    return Path(spec).stem


# ====================================================================== [run]
_RUN_KEYS = {"backend", "address", "host_resource", "real_cells_per_host", "spread_real_cells"}
RUN_BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class RunSettings:
    """Where the cells run (``[run]``): here one after the other, or as Ray tasks (:mod:`experiments.ray_campaign`).

    Not part of the config's hash: the same cells give the same results on either back end.
    """

    backend: str = "local"
    address: str | None = None             # a Ray cluster (None: a local Ray instance)
    host_resource: str = "planlab_host"    # a real-execution cell takes 1 / real_cells_per_host of it
    real_cells_per_host: int = 1
    #: real cells run one at a time from the driver on a RayExecutor: one execution's workers spread over the nodes
    spread_real_cells: bool = False


def parse_run(raw: Any) -> RunSettings:
    if not isinstance(raw, dict):
        raise ConfigError("run must be a table", 'write [run] with backend = "ray" (and address = "HOST:6379")')
    check_keys(raw, _RUN_KEYS, "[run]")
    backend = typed_value(raw, "backend", str, "run.backend", "local")
    if backend not in RUN_BACKENDS:
        raise ConfigError(f"run.backend = {backend!r} is not a back end{did_you_mean(backend, RUN_BACKENDS)}",
                          'use "local" (this machine, one cell after the other) or "ray" (cells as Ray tasks)')
    address = typed_value(raw, "address", str, "run.address", None) or None
    resource = typed_value(raw, "host_resource", str, "run.host_resource", "planlab_host")
    if not resource.strip():
        raise ConfigError("run.host_resource is empty", 'name the Ray resource of real-run hosts, e.g. "planlab_host"')
    per_host = bounded_int(raw, "real_cells_per_host", "run.real_cells_per_host", 1, 1, 1024)
    spread = typed_value(raw, "spread_real_cells", bool, "run.spread_real_cells", False)
    return RunSettings(backend, address, resource, per_host, spread)
