"""``gen:NAME[:k=v,...]`` strings: a registered generator called with its parameters coerced from text.

The command line, configs and :func:`planning.sources.loading.load_workflow` name
generated workflows this way; :func:`parse_generator_spec` looks the generator up in
the registry of :mod:`planning.sources.generators` and converts each value to the type
its parameter's annotation (or default) says.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from planning.errors import WorkflowError
from planning.names import did_you_mean
from planning.sources.generators import GeneratorFn, describe_parameters, generator_parameters, lookup_generator
from planning.workflow import Workflow


def parse_generator_spec(spec: str) -> Workflow:
    """Build a workflow from ``gen:NAME[:k=v,k=v...]`` (the ``gen:`` prefix is optional).

    Values are coerced to the type of the parameter's annotation (or default):
    ``int`` accepts ``10000`` and ``1e4``, ``bool`` accepts true/false/yes/no/1/0,
    ``None`` is written ``none``.  Unknown generators and unknown or ill-typed
    parameters raise :class:`WorkflowError` listing what is valid.
    """
    text = spec.strip()
    if text.startswith("gen:"):
        text = text[4:]
    name, _, rest = text.partition(":")
    name = name.strip()
    fn = lookup_generator(name)
    valid = generator_parameters(fn)
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise WorkflowError(f"generator spec {spec!r}: {item!r} is not key=value",
                                f"write gen:{name}:key=value,...; valid parameters: {describe_parameters(valid)}")
        if key not in valid:
            raise WorkflowError(f"generator {name!r} has no parameter {key!r}{did_you_mean(key, valid)}",
                                f"valid parameters: {describe_parameters(valid)}")
        if key in params:
            raise WorkflowError(f"generator spec {spec!r} sets {key!r} twice", "give each parameter once")
        params[key] = _coerce(fn, valid[key], raw.strip(), name)
    return fn(**params)


def _target_types(fn: GeneratorFn, param: inspect.Parameter) -> tuple[type, ...]:
    """The concrete types a parameter accepts, from its annotation or default."""
    try:
        hint = typing.get_type_hints(fn).get(param.name)
    except Exception:  # unresolvable annotations: fall back to the default's type
        hint = None
    if hint is not None:
        args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        found = tuple(a for a in args if isinstance(a, type))
        if found:
            return found
    if param.default is None:
        return (type(None), int, float, str)
    return (type(param.default),)


def _coerce(fn: GeneratorFn, param: inspect.Parameter, raw: str, gen: str) -> Any:
    types_ = _target_types(fn, param)
    if type(None) in types_ and raw.lower() in ("none", "null", ""):
        return None
    for t in (t for t in types_ if t is not type(None)):
        try:
            return _convert(t, raw)
        except (TypeError, ValueError):
            continue
    names = " or ".join(t.__name__ for t in types_)
    raise WorkflowError(f"generator {gen!r}: parameter {param.name!r} expects {names}, got {raw!r}",
                        f"give {param.name} a value like {param.default!r}")


def _convert(t: type, raw: str) -> Any:
    if t is bool:
        low = raw.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(raw)
    if t is int:
        try:
            return int(raw)
        except ValueError:
            value = float(raw)  # accepts 1e4
            if not value.is_integer():
                raise
            return int(value)
    if t in (float, str):
        return t(raw)
    raise TypeError(t)
