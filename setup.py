"""Builds the compiled twin of the simulator's hot path where it can (``simulator/compiled.py`` says why).

Everything else about the package is in ``pyproject.toml``.  Cython compiles ``simulator/fast_loop.py``,
unchanged but for one line recording its SHA-256, as ``simulator._fast_loop_c``; the extension is
optional: without Cython or a C compiler the build goes on without it and the Python module runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
SOURCE = Path("simulator") / "fast_loop.py"
TWIN_SOURCE = Path("build") / "cython" / "simulator" / "_fast_loop_c.py"


def compiled_twins(root: Path = HERE) -> list[Extension]:
    """The extension modules to build: the fast loop's twin, or none (with a line saying why) when Cython
    cannot translate it here.  The twin's source is written under ``build/`` (never into the package)."""
    text = (root / SOURCE).read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    twin = root / TWIN_SOURCE
    twin.parent.mkdir(parents=True, exist_ok=True)
    twin.write_text(f'{text}\n\nCOMPILED_FROM_SHA256 = "{digest}"\n', encoding="utf-8")
    try:
        from Cython.Build import cythonize
        extensions = cythonize([Extension("simulator._fast_loop_c", [str(TWIN_SOURCE)])],
                               language_level=3, quiet=True)
    except Exception as exc:     # (no Cython, or a source it cannot translate: the Python loop runs)
        print(f"planlab: not compiling the simulator's fast loop ({type(exc).__name__}: {exc}); "
              "the Python module runs instead, with the same results")
        return []
    for extension in extensions:     # (cythonize returns new Extensions, without the flag: set it on them)
        extension.optional = True    # no C compiler: the build goes on without the twin
    return extensions


if __name__ == "__main__":
    setup(ext_modules=compiled_twins())
