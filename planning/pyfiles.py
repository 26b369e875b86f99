"""Importing a user's Python file by its path, once per version of the file.

A workflow (``file.py:name``), a planner or a protocol (``file.py:Class``) and a task's
code (``/abs/path/file.py:qualname`` in a saved workflow) may live in a file that is
not on ``sys.path``.  :func:`import_python_file` imports it under a name unique to its
absolute path (cached by mtime and size) and registers it with cloudpickle by value, so
worker processes that cannot import it still receive its functions.  The workflow, the
source loader and the planner resolver all use this one function.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from planning.errors import WorkflowError

#: Prefix of the ``sys.modules`` names given to user files loaded by path.
USER_MODULE_PREFIX = "planlab_user_"


def import_python_file(path: str | Path) -> ModuleType:
    """Import a Python file by path under a unique ``sys.modules`` name (cached by mtime and size)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise WorkflowError(f"no such Python file {str(path)!r}", "check the path (relative to the current directory)")
    p = p.resolve()
    stat = p.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    name = module_name_for(p)
    cached = sys.modules.get(name)
    if cached is not None and getattr(cached, "__planlab_stamp__", None) == stamp:
        return cached
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise WorkflowError(f"cannot import {str(p)!r} as Python", "give a .py file")
    module = importlib.util.module_from_spec(spec)
    module.__planlab_source__ = str(p)  # type: ignore[attr-defined]
    module.__planlab_stamp__ = stamp  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise WorkflowError(f"{p} raised {type(exc).__name__} while being imported: {exc}",
                            "fix the error in that file (run it with python to see the traceback)") from exc
    _register_pickle_by_value(module)
    return module


def module_name_for(path: str | Path) -> str:
    """The ``sys.modules`` name a user file is imported under: unique per absolute path."""
    p = Path(path).expanduser().resolve()
    stem = re.sub(r"\W", "_", p.stem)
    return f"{USER_MODULE_PREFIX}{stem}_{hashlib.sha1(str(p).encode()).hexdigest()[:10]}"


def _register_pickle_by_value(module: ModuleType) -> None:
    # cloudpickle is the executor's dependency, not planning's: use it only if present.
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is installed with planlab
        return
    try:
        cloudpickle.register_pickle_by_value(module)
    except (ValueError, AttributeError):  # pragma: no cover - very old cloudpickle
        pass
