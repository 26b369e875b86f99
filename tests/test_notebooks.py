"""The notebooks execute from top to bottom (nbclient), so they never rot, and are committed with their outputs.

Refresh the committed outputs with ``python -m experiments.notebooks --refresh``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_planned_vs_real.ipynb",
                                           "03_your_own_planner.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch) -> None:
    # the kernel imports planlab from this checkout, and writes nothing into it
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("PLANLAB_RESULTS", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, "the notebook draws its figures"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_its_outputs(path: Path) -> None:
    """Every code cell was executed, in order, without an error: GitHub shows what the code does."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    counts = [cell.get("execution_count") for cell in code]
    assert None not in counts, "refresh the outputs: python -m experiments.notebooks --refresh " + path.stem[:2]
    assert counts == sorted(counts), "cells were run out of order; refresh the outputs"
    outputs = [o for cell in code for o in cell.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the committed notebook shows its figures"


def test_the_refresh_command_names_a_bad_selection(capsys) -> None:
    from experiments.notebooks import main

    assert main(["no-such-notebook"]) == 2
    assert "no notebook" in capsys.readouterr().err
