"""Which build of the default platform's hot path runs: :mod:`simulator.fast_loop` itself, or its compiled twin.

Why a compiled twin: the fast loop is where a default simulation spends its time, and it is already
written out to the point where every calendar event it processes is needed for the general loop's
order (issue 18); what is left per task is the interpreter's dispatch of its lines.  ``setup.py`` has
Cython compile the very same source, unchanged, into ``simulator._fast_loop_c``: the same code on the
same Python objects (no type declarations, only Cython's safe type inference: every operation keeps
Python's semantics, so the results are the Python loop's bit for bit - every case of
``tests/test_simulator_fast.py`` compares the two), without the bytecode loop - about 1.4x on the
10k-task benchmark.

It is optional: an install without a C compiler (or without Cython) builds nothing and runs the Python
module, with the same results.  The twin runs only when it was compiled from the ``fast_loop.py`` beside
it (the source's SHA-256, which ``setup.py`` writes into the twin as ``COMPILED_FROM_SHA256``): in an
editable install, an edited ``fast_loop.py`` is never shadowed by a stale build - it warns once and the
Python module runs until ``pip install -e .`` builds the twin again.  ``PLANLAB_PURE_PYTHON=1`` turns the
twin off (to profile the loop line by line, or to step through it in a debugger).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType

from simulator import fast_loop as python_fast_loop

#: the compiled twin's module name (``setup.py`` builds it)
TWIN = "simulator._fast_loop_c"
#: set to 1 (or any non-empty value but 0) to run the Python loop even where the twin is built
PURE_ENV = "PLANLAB_PURE_PYTHON"

_chosen: tuple[ModuleType, str] | None = None


def source_digest(path: Path | None = None) -> str:
    """The SHA-256 of ``simulator/fast_loop.py`` as ``setup.py`` computes it (its UTF-8 text)."""
    path = Path(python_fast_loop.__file__) if path is None else path
    return hashlib.sha256(path.read_text(encoding="utf-8").encode("utf-8")).hexdigest()


def choose(source: Path | None = None, twin_name: str = TWIN) -> tuple[ModuleType, str]:
    """The fast loop's module to run and why: ``(module, status)``, status one of ``"compiled"``,
    ``"python: PLANLAB_PURE_PYTHON is set"``, ``"python: no compiled build"`` or
    ``"python: the compiled build is stale (...)"``.  Not cached: :func:`fast_loop` caches it."""
    if os.environ.get(PURE_ENV, "").strip() not in ("", "0"):
        return python_fast_loop, f"python: {PURE_ENV} is set"
    try:
        twin = importlib.import_module(twin_name)
    except ImportError:
        return python_fast_loop, "python: no compiled build"
    built_from = getattr(twin, "COMPILED_FROM_SHA256", None)
    if built_from != source_digest(source):
        return python_fast_loop, ("python: the compiled build is stale (simulator/fast_loop.py changed since it "
                                  "was built; run `python -m pip install -e .` again to rebuild it)")
    return twin, "compiled"


def fast_loop() -> ModuleType:
    """The module :class:`simulator.engine.Run` runs the default platform with (see the module's docstring);
    chosen once per process, with one warning when a stale build is passed over."""
    global _chosen
    if _chosen is None:
        _chosen = choose(twin_name=TWIN)
        if _chosen[1].startswith("python: the compiled build is stale"):
            warnings.warn(f"planlab's simulator: {_chosen[1][len('python: '):]}; running the Python loop "
                          "(same results, slower)", RuntimeWarning, stacklevel=2)
    return _chosen[0]


def status() -> str:
    """Which build :func:`fast_loop` runs, and why (recorded with the simulator's benchmark)."""
    fast_loop()
    assert _chosen is not None
    return _chosen[1]


def reset() -> None:
    """Forget the choice (tests that change :data:`PURE_ENV` or the build)."""
    global _chosen
    _chosen = None
