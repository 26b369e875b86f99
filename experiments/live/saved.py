"""``planlab view RESULTS_DIR``: finished runs, read back from their saved folders, as the live page shows them.

Every real run ``planlab run`` makes is saved (``RESULTS/runs/RUN_ID``, see
:mod:`experiments.saved_runs`), and so is ``planlab execute --save-run DIR``: the plan,
the workflow and the real Trace are all the page needs.  A results folder's
``summary.parquet`` adds each cell's simulated makespan at the SLA.  Runs are listed
profiling runs first and execute cells last, so the page opens on a cell.
"""

from __future__ import annotations

import sys
from pathlib import Path

from experiments.live.hub import LiveHub
from experiments.live.runplan import RunPlan
from experiments.saved_runs import SavedRunError, find_saved_runs, load_saved_run

__all__ = ["add_saved_runs"]

_PHASE_ORDER = {"profile": 0, "execute": 1, "cell": 2}


def add_saved_runs(hub: LiveHub, path: str | Path) -> int:
    """Add every saved run under ``path`` to ``hub`` as a finished run; how many were added.

    A path with no saved run is one :class:`SavedRunError`; a run that cannot be read
    back (its workflow file moved, say) is skipped with a note on stderr.
    """
    simulated = _simulated_makespans(Path(path))
    runs = []
    for folder in find_saved_runs(path):
        try:
            runs.append(load_saved_run(folder))
        except SavedRunError as exc:
            print(f"note: skipped {folder}: {exc.one_line()}", file=sys.stderr)
    if not runs:
        raise SavedRunError(f"no saved run under {str(path)!r} could be read back",
                            "see the notes above; save the runs again with planlab run or planlab execute --save-run")
    runs.sort(key=lambda r: (_PHASE_ORDER.get(r.phase, 1), str(r.path)))
    for run in runs:
        plan = RunPlan.of(run.workflow, run.plan, run.run_id, simulated_makespan_s=simulated.get(run.run_id),
                          label=f"{run.phase} {run.run_id}")
        hub.add_finished(plan, run.trace)
    return len(runs)


def _simulated_makespans(path: Path) -> dict[str, float]:
    """Cell id -> simulated makespan at the SLA, from a results folder's summary (empty without one)."""
    summary = path / "summary.parquet"
    if not summary.is_file():
        return {}
    import pandas as pd

    frame = pd.read_parquet(summary)
    if not {"cell_id", "simulated_makespan_s"} <= set(frame.columns):
        return {}
    return {str(c): float(v) for c, v in zip(frame["cell_id"], frame["simulated_makespan_s"]) if v == v}
