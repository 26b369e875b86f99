"""Execute the notebooks, and refresh the outputs committed with them.

The notebooks under ``notebooks/`` are committed *with* their outputs, so they show
their tables and figures on GitHub; the test suite executes every one of them
(``tests/test_notebooks.py``), so an output can never describe code that no longer runs.
After changing a notebook or the code it shows, refresh the committed outputs::

    python -m experiments.notebooks --refresh            # every notebook, in place
    python -m experiments.notebooks --refresh 03         # the notebooks whose name contains 03
    python -m experiments.notebooks                      # execute without writing (a check)

(``jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb`` does the
same from the dev extra; this command also drops run-to-run noise: execution
timestamps, so a refresh without changes leaves ``git diff`` about the images only.)
Kernels run with the repository on ``PYTHONPATH`` and the notebook's folder as the
working directory, and write their scratch files under the temporary directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
#: Seconds one cell may run before the notebook fails (the quickstart's real run takes a few).
CELL_TIMEOUT_S = 300


def notebook_paths(patterns: Sequence[str] = ()) -> list[Path]:
    """The notebooks whose file name contains any of ``patterns`` (all of them when none is given)."""
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    return [p for p in paths if not patterns or any(pattern in p.name for pattern in patterns)]


def execute_notebook(path: Path, *, timeout: int = CELL_TIMEOUT_S):
    """Run ``path`` top to bottom in a fresh kernel; the executed notebook (nbformat node), unsaved.

    Raises nbclient's ``CellExecutionError`` (with the failing cell's traceback) on an error.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path          # the kernel inherits it: planlab from this checkout
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
    return _without_timestamps(nb)


def _without_timestamps(nb):
    """Drop per-cell execution timestamps (noise in every diff); keep counts and outputs."""
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    return nb


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="parts of notebook file names (default: all)")
    parser.add_argument("--refresh", action="store_true", help="write the outputs back into the notebooks")
    args = parser.parse_args(argv)
    import nbformat
    from nbclient.exceptions import CellExecutionError

    paths = notebook_paths(args.names)
    if not paths:
        sys.stderr.write(f"no notebook in {NOTEBOOK_DIR} matches {args.names} (fix: give part of a file name)\n")
        return 2
    for path in paths:
        start = time.perf_counter()
        try:
            nb = execute_notebook(path)
        except CellExecutionError as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            sys.stderr.write(f"{path.name}: a cell failed: {first}\n")
            return 1
        if args.refresh:
            nbformat.write(nb, path)
        verb = "refreshed" if args.refresh else "executed"
        print(f"{path.name}: {verb} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
