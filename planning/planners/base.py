"""The planner interface and its registry."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from planning.errors import PlanError

PLANNERS: dict[str, type["Planner"]] = {}


class Planner:
    """Base class: parameters go to ``__init__`` (keyword-only), the work to :meth:`plan`."""

    name = "planner"

    def plan(self, workflow, catalog, cost_model, sla):  # pragma: no cover - interface
        raise NotImplementedError

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


def get_planner(name: str, **params: Any) -> Planner:
    """An instance of the planner registered as ``name`` with ``params``."""
    if name not in PLANNERS:
        raise PlanError(f"unknown planner {name!r}", f"use one of: {', '.join(sorted(PLANNERS))}")
    cls = PLANNERS[name]
    try:
        return cls(**params)
    except TypeError as exc:
        valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise PlanError(f"planner {name!r}: bad parameters {sorted(params)} ({exc})",
                        f"valid parameters: {', '.join(valid) or 'none'}") from None
