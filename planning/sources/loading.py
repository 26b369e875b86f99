"""One entry point from a command-line string to a :class:`Workflow`.

:func:`load_workflow` accepts, in this order of recognition:

``gen:NAME[:k=v,...]``
    a registered generator (:func:`planning.sources.generator_specs.parse_generator_spec`);
``gen:wfcommons:RECIPE[:k=v,...]``
    a WfCommons recipe (:mod:`planning.sources.wfcommons_recipes`, the optional ``wfcommons`` extra);
``path/to/file.py:name``
    an attribute of a Python file: a :class:`Workflow`, a ``TaskResult`` or a
    list/dict (any nesting) of them standing for the graph behind them, or a
    zero-argument function returning one of those;
``path/to/file.json``
    planlab's own workflow JSON (``"format": "planlab-workflow/1"``) or a
    WfFormat instance (anything with a top-level ``workflow`` object).

Every way of failing (missing file, malformed JSON, unknown generator, missing
attribute, a file that raises on import) is one :class:`WorkflowError` that says
what went wrong and how to fix it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

from planning.errors import WorkflowError
from planning.pyfiles import import_python_file
from planning.sources.dsl import TaskResult, build_workflow
from planning.sources.generator_specs import parse_generator_spec
from planning.sources.generators import GENERATORS
from planning.sources.wfcommons_recipes import is_wfcommons_spec, parse_wfcommons_spec
from planning.sources.wfformat import load_json_strict, read_wfformat
from planning.workflow import WORKFLOW_FORMAT, Workflow

_SPEC_HELP = ("give a workflow as gen:NAME[:k=v,...], path/to/file.py:name, "
              "or a planlab / WfFormat JSON file")


def load_workflow(spec: str | Path) -> Workflow:
    """The workflow that ``spec`` names (see the module docstring for the forms).

    Cost: that of the underlying builder or reader, O(n + e) for files.
    """
    if isinstance(spec, Path):
        return _load_json_file(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise WorkflowError(f"empty or invalid workflow spec {spec!r}", _SPEC_HELP)
    text = spec.strip()
    if is_wfcommons_spec(text):
        return parse_wfcommons_spec(text)
    if text.startswith("gen:"):
        return parse_generator_spec(text)
    file_part, sep, attr = text.rpartition(":")
    if sep and file_part.endswith(".py"):
        return load_from_python(file_part, attr)
    if text.endswith(".py"):
        raise WorkflowError(f"workflow spec {text!r} names a Python file but no attribute",
                            f"write {text}:NAME, where NAME is a Workflow, task result(s) or a function returning one")
    return _load_json_file(Path(text))


def load_from_python(path: str | Path, attr: str) -> Workflow:
    """The workflow behind attribute ``attr`` (dotted names allowed) of the Python file ``path``.

    The file is imported as a module registered in ``sys.modules`` under a unique
    name (``planlab_user_<stem>_<hash of path>``), so its functions can be
    pickled; when cloudpickle is installed the module is also registered to be
    pickled *by value*, so worker processes need not import the file.  Imports are
    cached until the file changes.
    """
    module = import_python_file(path)
    if not attr:
        raise WorkflowError(f"workflow spec {str(path)!r}: no attribute after ':'",
                            f"write {path}:NAME; the file defines {_public_names(module)}")
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise WorkflowError(f"{path} has no attribute {attr!r}",
                                f"use one of: {_public_names(module)}")
        value = getattr(value, part)
    return _as_workflow(value, f"{path}:{attr}", attr)


def _as_workflow(value: Any, where: str, name: str, called: bool = False) -> Workflow:
    if isinstance(value, Workflow):
        return value.validate()
    if _has_results(value):
        return build_workflow(value, name=name)
    if callable(value) and not called and not isinstance(value, type):
        try:
            inspect.signature(value).bind()
        except TypeError as exc:
            raise WorkflowError(f"{where} needs arguments ({exc})",
                                "point at a function with no required arguments, or at a Workflow") from None
        except ValueError:  # no signature to inspect: just try the call
            pass
        return _as_workflow(value(), where, name, called=True)
    what = "returned" if called else "is"
    raise WorkflowError(f"{where} {what} of type {type(value).__name__}, not a workflow",
                        "point at a Workflow, a task result (or a list/dict of them), "
                        "or a zero-argument function returning one")


def _has_results(value: Any) -> bool:
    if isinstance(value, TaskResult):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_results(v) for v in value)
    if isinstance(value, dict):
        return any(_has_results(v) for v in value.values())
    return False


def _public_names(module: ModuleType) -> str:
    names = [n for n, v in vars(module).items()
             if not n.startswith("_") and not isinstance(v, ModuleType)
             and (isinstance(v, Workflow) or _has_results(v) or callable(v))]
    return ", ".join(sorted(names)) or "(nothing usable)"


def _load_json_file(path: Path) -> Workflow:
    if not path.is_file():
        hint = (f"check the path; generators are written gen:NAME (known: {', '.join(sorted(GENERATORS))})"
                if path.suffix in ("", ".json") else _SPEC_HELP)
        raise WorkflowError(f"no such workflow file {str(path)!r}", hint)
    data = load_json_strict(path)   # NaN, Infinity, absurd nesting: one clear error
    if isinstance(data, dict) and data.get("format") == WORKFLOW_FORMAT:
        try:
            return Workflow.from_dict(data)
        except WorkflowError as exc:
            raise WorkflowError(f"{path}: {exc.what}", exc.fix) from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            raise WorkflowError(f"{path}: not a valid planlab workflow ({type(exc).__name__}: {exc})"[:300],
                                "export it with Workflow.to_json, or check the file against that format") from None
    if isinstance(data, dict) and "workflow" in data:
        return read_wfformat(path)
    raise WorkflowError(f"{path} is neither a planlab workflow (format {WORKFLOW_FORMAT!r}) nor a WfFormat instance",
                        "export it with Workflow.to_json or wfformat.write_wfformat, or check the file")
