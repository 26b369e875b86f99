"""The planner interface, its registry, and the one resolver from a name to a planner or protocol class.

A researcher names a planner (or a worker protocol) the same way everywhere - the
``--planner`` option, a config's ``[[planner]] name``, a notebook - and
:func:`resolve_planner` / :func:`resolve_protocol` understand four spellings, tried
in this order:

1. a **registered name** (``heft``; ``@register_planner("mine")`` in code already imported);
2. ``path/to/file.py:Class``: a class in a Python file (imported once, cached by mtime);
3. ``package.module:Class``: a class in an importable module;
4. an **installed plugin**: a distribution's entry point in the ``planlab.planners``
   (or ``planlab.protocols``) group, e.g. in its ``pyproject.toml``::

       [project.entry-points."planlab.planners"]
       cluster-chains = "my_planners.cluster:ClusterChains"

An unknown name is one :class:`~planning.errors.PlanError` that says which names
exist and which is closest ("did you mean 'heft'?").  A planner class that was
not registered takes the name it was asked for (``my_planners.py:Mine``), so
every plan records where its planner came from.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from planning.errors import PlanError, PlanlabError
from planning.names import did_you_mean
from planning.pyfiles import import_python_file
from planning.protocol import WorkerProtocol
from planning.protocol.optimizations import PROTOCOL_OPTIMIZATIONS

if TYPE_CHECKING:   # the types of plan()'s signature; importing them here would load the cost model for every resolve
    from planning.costs.cost_model import CostModel
    from planning.plan import Plan
    from planning.profiles import Catalog
    from planning.sla import SLA
    from planning.workflow import Workflow

PLANNERS: dict[str, type["Planner"]] = {}
PROTOCOLS: dict[str, type[WorkerProtocol]] = {"default": WorkerProtocol}
PROTOCOLS.update(PROTOCOL_OPTIMIZATIONS)     # the named optimizations (retention, ...)

#: Entry-point groups an installed package uses to offer planners and worker protocols by name.
PLANNER_ENTRY_POINTS = "planlab.planners"
PROTOCOL_ENTRY_POINTS = "planlab.protocols"

_DEFAULT_NAME = "planner"
_SPELLINGS = "a registered name, an installed plugin's name, path/file.py:Class or package.module:Class"

T = TypeVar("T")


class Planner(ABC):
    """Base class: parameters go to ``__init__`` (keyword-only), the work to :meth:`plan`.

    ``name`` is the registered name (set by :func:`register_planner`, or the spec a
    planner was resolved from), recorded in every plan with :attr:`params`.
    """

    name: str = _DEFAULT_NAME

    @abstractmethod
    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        """A plan of ``workflow`` on ``catalog``'s profiles, with ``cost_model``'s estimates at ``sla``.

        Deterministic for the same inputs; raises :class:`~planning.errors.PlanError`
        (one line: what and how to fix it) when no plan is possible.
        """

    @property
    def params(self) -> dict[str, Any]:
        """The constructor's parameters as given (recorded in every plan)."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self" and hasattr(self, k)}


def register_planner(name: str) -> Callable[[type[Planner]], type[Planner]]:
    """Class decorator: make a planner available by ``name``."""
    def wrap(cls: type[Planner]) -> type[Planner]:
        cls.name = name
        PLANNERS[name] = cls
        return cls
    return wrap


def register_protocol(name: str) -> Callable[[type[WorkerProtocol]], type[WorkerProtocol]]:
    """Class decorator: make a :class:`WorkerProtocol` subclass available by ``name``."""
    def wrap(cls: type[WorkerProtocol]) -> type[WorkerProtocol]:
        PROTOCOLS[name] = cls
        return cls
    return wrap


# ====================================================================== the resolver
def resolve_planner(spec: str) -> type[Planner]:
    """The planner class ``spec`` names (see the module docstring for the four spellings)."""
    return _resolve(spec, PLANNERS, PLANNER_ENTRY_POINTS, Planner, "planner")


def resolve_protocol(spec: str) -> type[WorkerProtocol]:
    """The worker-protocol class ``spec`` names (``default`` is :class:`WorkerProtocol` itself)."""
    return _resolve(spec, PROTOCOLS, PROTOCOL_ENTRY_POINTS, WorkerProtocol, "protocol")


def get_planner(spec: str, **params: Any) -> Planner:
    """An instance of the planner ``spec`` names, built with ``params``.

    A class that was not registered under a name of its own is named ``spec``
    on the instance, so the plan says ``planner = "my_planners.py:Mine"``.
    """
    cls = resolve_planner(spec)
    try:
        planner = cls(**params)
    except TypeError as exc:
        valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
        unknown = [p for p in sorted(params) if p not in valid]
        hint = did_you_mean(unknown[0], valid) if unknown else ""
        raise PlanError(f"planner {spec!r}: bad parameters {sorted(params)} ({exc}){hint}",
                        f"valid parameters: {', '.join(valid) or 'none'}") from None
    if _own_name(cls) is None:
        planner.name = spec
    return planner


def planner_names() -> list[str]:
    """Every name :func:`resolve_planner` knows without a path: registered and installed plugins."""
    return sorted(set(PLANNERS) | set(_entry_points(PLANNER_ENTRY_POINTS)))


def protocol_names() -> list[str]:
    """Every protocol name known without a path: registered and installed plugins."""
    return sorted(set(PROTOCOLS) | set(_entry_points(PROTOCOL_ENTRY_POINTS)))


def default_label(spec: str, cls: type) -> str:
    """A short label for a planner in tables: its own name, else the class name of a ``...:Class`` spec."""
    own = _own_name(cls)
    if own is not None:
        return own if ":" in spec else spec
    return spec.rpartition(":")[2] if ":" in spec else spec


def _own_name(cls: type) -> str | None:
    """The name a planner class gave itself (registered, or a ``name`` it sets), None for an inherited one.

    A subclass of ``heft`` that is not registered must not plan under the name ``heft``.
    """
    name = getattr(cls, "name", _DEFAULT_NAME)
    if PLANNERS.get(name) is cls or ("name" in vars(cls) and name != _DEFAULT_NAME):
        return name
    return None


def _resolve(spec: str, registry: dict[str, type[T]], group: str, base: type, what: str) -> type[T]:
    if not isinstance(spec, str) or not spec.strip():
        raise PlanError(f"empty {what} name {spec!r}", f"give {_SPELLINGS}")
    spec = spec.strip()
    if spec in registry:
        return registry[spec]
    module_part, sep, attr = spec.rpartition(":")
    if sep and module_part and attr:            # entry-point names never hold ':' - no need to scan for one
        return _checked(_load_attribute(module_part, attr, base, what), base, spec, what)
    plugins = _entry_points(group)              # scans the installed distributions: only for bare names
    if spec in plugins:
        return _checked(_load_entry_point(plugins[spec], what), base, spec, what)
    known = sorted(set(registry) | set(plugins))
    raise PlanError(f"unknown {what} {spec!r}{did_you_mean(spec, known)}",
                    f"use one of: {', '.join(known)}; or path/file.py:Class, package.module:Class, "
                    f"or install a package with a {group!r} entry point")


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """Installed plugins of ``group`` by name (the first distribution wins a duplicate name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def _load_entry_point(ep: metadata.EntryPoint, what: str) -> Any:
    dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
    try:
        return ep.load()
    except Exception as exc:  # a plugin's import error is the plugin's, reported in one line
        raise PlanError(f"{what} plugin {ep.name!r} ({ep.value}, from {dist}) failed to load: "
                        f"{type(exc).__name__}: {exc}",
                        f"fix or reinstall {dist}, or check the entry point's 'module:Class'") from None


def _load_attribute(module_part: str, attr: str, base: type, what: str) -> Any:
    if module_part.endswith(".py"):
        try:
            module = import_python_file(module_part)
        except PlanlabError as exc:
            raise PlanError(f"{what} {module_part}:{attr}: {exc.what}", exc.fix) from None
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise PlanError(f"{what} {module_part}:{attr}: no module named {exc.name!r}",
                            "install the package, add it to PYTHONPATH, or give path/file.py:Class") from None
        except Exception as exc:
            raise PlanError(f"{what} {module_part}:{attr}: importing {module_part} raised {type(exc).__name__}: {exc}",
                            "fix the error in that module") from None
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            candidates = [n for n, v in vars(module).items()
                          if isinstance(v, type) and issubclass(v, base) and v is not base]
            raise PlanError(f"{module_part} has no {what} class {attr!r}{did_you_mean(attr, candidates)}",
                            f"classes there: {', '.join(sorted(candidates)) or f'none subclass {base.__name__}'}")
        value = getattr(value, part)
    return value


def _checked(value: Any, base: type, spec: str, what: str) -> Any:
    if not (isinstance(value, type) and issubclass(value, base)):
        raise PlanError(f"{what} {spec!r} is {type(value).__name__} {getattr(value, '__name__', value)!r}, "
                        f"not a {base.__name__} subclass",
                        f"point at a class that subclasses {base.__module__}.{base.__name__}")
    return value
