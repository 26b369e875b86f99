"""The history schema: what past runs measured, one row per task execution.

The executor writes exactly these columns; the simulator's traces use the same
names, and the cost model is fitted on them.  A history is a plain pandas
DataFrame so researchers can filter, join and plot it with the tools they know.

Required columns (see :data:`REQUIRED_COLUMNS`): identity of the run and task,
the profile it ran on, bytes in and out, and seconds per phase.  Optional columns
(:data:`TIMESTAMP_COLUMNS`) hold absolute epoch timestamps of each phase, and
(:data:`HOST_COLUMNS`) the host's condition when the run started; more columns are
welcome and kept.  Histories written before an optional column existed still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from planning.errors import HistoryError

#: Column -> kind: "str", "float", "int" or "bool".
REQUIRED_COLUMNS: dict[str, str] = {
    "run_id": "str",
    "workflow": "str",
    "structure_hash": "str",
    "task_id": "str",
    "kind": "str",
    "profile": "str",
    "cpus": "float",
    "memory_mb": "float",
    "input_bytes": "float",
    "output_bytes": "float",
    "download_s": "float",
    "exec_s": "float",
    "upload_s": "float",
    "startup_s": "float",
    "cold_start": "bool",
}

#: Optional absolute timestamps (epoch seconds) of each phase; NaN when unknown.
TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "ready_ts", "worker_start_ts", "download_start_ts", "download_end_ts", "exec_start_ts",
    "exec_end_ts", "upload_start_ts", "upload_end_ts", "done_ts",
)

#: Optional host conditions at the start of the run (``experiments.hostload``): the 1-minute load
#: average and the seconds of a fixed CPU-speed probe loop.  NaN when not recorded.
HOST_COLUMNS: tuple[str, ...] = ("host_load_1m", "cpu_probe_s")

_DURATIONS = ("download_s", "exec_s", "upload_s", "startup_s", "input_bytes", "output_bytes", "cpus", "memory_mb")


def empty_history() -> pd.DataFrame:
    """A history with the required columns and no rows."""
    return validate_history(pd.DataFrame({c: pd.Series(dtype=_dtype(k)) for c, k in REQUIRED_COLUMNS.items()}))


def _dtype(kind: str) -> str:
    return {"str": "object", "float": "float64", "int": "int64", "bool": "bool"}[kind]


def validate_history(df: pd.DataFrame, source: str = "history") -> pd.DataFrame:
    """Check the schema; return a copy with canonical dtypes.

    Raises :class:`HistoryError` naming the first bad column: missing, of the
    wrong type, holding NaN, or holding negative durations/sizes.
    """
    if not isinstance(df, pd.DataFrame):
        raise HistoryError(f"{source} is a {type(df).__name__}, not a DataFrame", "pass a pandas DataFrame")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise HistoryError(f"{source} lacks column(s) {', '.join(missing)}",
                           f"a history needs: {', '.join(REQUIRED_COLUMNS)}")
    out = df.copy()
    for col, kind in REQUIRED_COLUMNS.items():
        series = out[col]
        if series.isna().any():
            n = int(series.isna().sum())
            raise HistoryError(f"{source} column {col!r} has {n} missing (NaN) value(s)",
                               f"drop or fill the rows with missing {col}")
        if kind == "float":
            try:
                out[col] = pd.to_numeric(series, errors="raise").astype("float64")
            except (ValueError, TypeError):
                raise HistoryError(f"{source} column {col!r} must be numeric, got {series.dtype}",
                                   f"store {col} as numbers") from None
            if not np.isfinite(out[col].to_numpy()).all():
                raise HistoryError(f"{source} column {col!r} holds infinite values", f"fix {col}")
        elif kind == "bool":
            if series.dtype != bool:
                if set(pd.unique(series)) <= {0, 1, True, False}:
                    out[col] = series.astype(bool)
                else:
                    raise HistoryError(f"{source} column {col!r} must be boolean, got values like {series.iloc[0]!r}",
                                       f"store {col} as True/False")
        else:
            out[col] = series.astype(str)
    for col in _DURATIONS:
        if (out[col] < 0).any():
            raise HistoryError(f"{source} column {col!r} has negative values", f"{col} must be >= 0")
    if (out["cpus"] <= 0).any():
        raise HistoryError(f"{source} column 'cpus' has values <= 0", "cpus must be positive")
    for col in TIMESTAMP_COLUMNS + HOST_COLUMNS:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out.reset_index(drop=True)


def save_history(df: pd.DataFrame, path: str | Path) -> Path:
    """Validate and write as Parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    validate_history(df).to_parquet(path, index=False)
    return path


def load_history(path: str | Path) -> pd.DataFrame:
    """Read a Parquet (or CSV) history and validate it."""
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"history file {str(path)!r} does not exist", "give the path of a Parquet history")
    try:
        df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise HistoryError(f"cannot read history file {str(path)!r}: {exc}", "give a Parquet file written by planlab") from None
    return validate_history(df, source=f"history {path.name}")


def concat_histories(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate many runs' histories (validated) into one."""
    frames = [validate_history(f) for f in frames]
    if not frames:
        return empty_history()
    return validate_history(pd.concat(frames, ignore_index=True))
