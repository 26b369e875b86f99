"""The report's tables: confidence intervals, whether the SLA was met, resources, load, errors by phase and kind, fit.

Each function takes the tables :class:`experiments.results.Results` loads and returns a
tidy DataFrame (empty when the results hold nothing to compute it from), so the
numbers behind every figure and sentence of the report can be read and re-used.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from planning.sla import SLA

#: The optional summary column with the host's 1-minute load average when a cell ran (``/proc/loadavg``).
HOST_LOAD_COLUMN = "host_load_1m"
ENGINES = (("planned", "planned_makespan_s"), ("simulated", "simulated_makespan_s"), ("real", "real_makespan_s"))
CELL_KEYS = ["workflow", "planner", "sla"]
#: Columns of the compact summary table (name in the report -> summary column).
TABLE_COLUMNS = {"workflow": "workflow", "planner": "planner", "sla": "sla", "rep": "repetition",
                 "planned_s": "planned_makespan_s", "simulated_s": "simulated_makespan_s", "real_s": "real_makespan_s",
                 "plan_err_%": "plan_error", "sim_err_%": "sim_error", "forecast_err_%": "forecast_error", "planned_cost_$": "planned_cost",
                 "real_cost_$": "real_cost", "load_1m": "host_load_1m"}


def bootstrap_ci(values: Any, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (NaN, NaN for fewer than two values).

    With few repetitions the interval is narrow only if the runs agree; it never claims
    more than the data show, unlike a normal-theory interval on two points.
    """
    x = np.asarray(pd.Series(values, dtype="float64").dropna())
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def makespan_ci(summary: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per workflow, planner, SLA and engine: repetitions, mean makespan and its bootstrap CI."""
    rows = []
    if summary.empty:
        return pd.DataFrame()
    for keys, g in summary.groupby(CELL_KEYS, sort=False):
        for engine, col in ENGINES:
            if col not in g or g[col].isna().all():
                continue
            lo, hi = bootstrap_ci(g[col], level)
            rows.append({**dict(zip(CELL_KEYS, keys)), "engine": engine, "n": int(g[col].notna().sum()),
                         "mean_s": float(g[col].mean()), "ci_low_s": lo, "ci_high_s": hi})
    return pd.DataFrame(rows)


def sla_target(sla: str) -> float:
    """The share of runs an SLA promises at or below its prediction: q for a percentile, 0.5 for the mean."""
    try:
        parsed = SLA.parse(sla)
    except Exception:   # an SLA name this planlab no longer knows: no target rather than no report
        return float("nan")
    return float(parsed.q) if parsed.kind == "quantile" else 0.5


def sla_met(summary: pd.DataFrame, by_workflow: bool = False) -> pd.DataFrame:
    """Per planner and SLA (and workflow): the share of real runs at or below the planned (and simulated) makespan.

    The plan's makespan at a percentile SLA is its prediction of that percentile, so a
    well-calibrated p95 plan is met by about 95% of real runs; the mean by about half.
    """
    if summary.empty or "real_makespan_s" not in summary or summary["real_makespan_s"].isna().all():
        return pd.DataFrame()
    real = summary.dropna(subset=["real_makespan_s"])
    keys = (["workflow"] if by_workflow else []) + ["planner", "sla"]
    rows = []
    for values, g in real.groupby(keys, sort=False):
        sla = values[-1]
        row = {**dict(zip(keys, values)), "runs": len(g), "target": sla_target(sla),
               "met_plan": float((g["real_makespan_s"] <= g["planned_makespan_s"]).mean())}
        if "simulated_makespan_s" in g and g["simulated_makespan_s"].notna().any():
            row["met_simulation"] = float((g["real_makespan_s"] <= g["simulated_makespan_s"]).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def resources(summary: pd.DataFrame, workers: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per cell: GB-seconds (memory x billed seconds) and price for each engine with worker rows."""
    if summary.empty:
        return pd.DataFrame()
    out = summary[["cell_id"] + CELL_KEYS + (["repetition"] if "repetition" in summary else [])].copy()
    for engine, frame in workers.items():
        if frame is None or frame.empty or not {"gb_s", "cost"} <= set(frame.columns):
            continue
        sums = frame.groupby("cell_id")[["gb_s", "cost"]].sum()
        out[f"{engine}_gb_s"] = out["cell_id"].map(sums["gb_s"])
        out[f"{engine}_cost"] = out["cell_id"].map(sums["cost"])
    return out


def host_load(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell: the host's 1-minute load when it ran (``host_load_1m``), or "not recorded"."""
    if summary.empty:
        return pd.DataFrame()
    out = summary[["cell_id"]].copy()
    if HOST_LOAD_COLUMN in summary:
        out["host_load_1m"] = summary[HOST_LOAD_COLUMN].map(lambda v: f"{v:.2f}" if v == v else "not recorded")
    else:
        out["host_load_1m"] = "not recorded"
    return out


# ====================================================================== errors by phase and kind
_DURATIONS = {"start-up": ("startup_s", None), "download": ("download_start_s", "download_end_s"),
              "execution": ("exec_start_s", "exec_end_s"), "upload": ("upload_start_s", "upload_end_s")}


def task_durations(tasks: pd.DataFrame) -> pd.DataFrame:
    """Per task (last attempt): each phase's duration in seconds."""
    if tasks.empty:
        return pd.DataFrame()
    t = tasks.sort_values("attempt", kind="stable").drop_duplicates(["cell_id", "task_id"], keep="last")
    out = t[["cell_id", "task_id", "kind"]].copy()
    for phase, (start, end) in _DURATIONS.items():
        out[phase] = t[start] if end is None else (t[end] - t[start]).clip(lower=0)
    return out


def _joined(predicted: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    pred, ref = task_durations(predicted), task_durations(real)
    if pred.empty or ref.empty:
        return pd.DataFrame()
    return pred.merge(ref.drop(columns="kind"), on=["cell_id", "task_id"], suffixes=("_pred", "_real"))


def error_by_phase(predicted: Mapping[str, pd.DataFrame], real: pd.DataFrame) -> pd.DataFrame:
    """Per predictor (plan, simulation) and phase: mean real and predicted seconds per task and the mean error."""
    rows = []
    for name, frame in predicted.items():
        j = _joined(frame, real)
        for phase in _DURATIONS if len(j) else ():
            err = j[f"{phase}_pred"] - j[f"{phase}_real"]
            rows.append({"predictor": name, "phase": phase, "tasks": len(j), "real_mean_s": j[f"{phase}_real"].mean(),
                         "predicted_mean_s": j[f"{phase}_pred"].mean(), "mean_error_s": err.mean(),
                         "mean_abs_error_s": err.abs().mean()})
    return pd.DataFrame(rows)


def error_by_kind(predicted: Mapping[str, pd.DataFrame], real: pd.DataFrame) -> pd.DataFrame:
    """Per predictor and task kind: execution seconds predicted vs real and the median ratio real / predicted."""
    rows = []
    for name, frame in predicted.items():
        j = _joined(frame, real)
        for kind, g in (j.groupby("kind", sort=True) if len(j) else ()):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (g["execution_real"] / g["execution_pred"]).replace([np.inf, -np.inf], np.nan)
            rows.append({"predictor": name, "kind": kind, "tasks": len(g), "real_exec_mean_s": g["execution_real"].mean(),
                         "predicted_exec_mean_s": g["execution_pred"].mean(),
                         "mean_error_s": (g["execution_pred"] - g["execution_real"]).mean(),
                         "median_ratio_real_to_predicted": ratio.median()})
    return pd.DataFrame(rows)


def cost_model_fit(cost_model: Mapping[str, Any]) -> pd.DataFrame:
    """How well the cost model fitted its history: per task kind, transfer and start-up, the samples and spread.

    ``sigma`` is the log-residual spread of the fitted runtime (0.1 means about +-10%);
    ``ratio_p95`` the 95th percentile of observed / predicted.  ``source`` says whether a
    value was fitted from history or fell back to a prior.
    """
    rows = []
    for k in cost_model.get("kinds", []) or []:
        rows.append({"part": "runtime", "name": k.get("kind"), "source": k.get("source"), "samples": k.get("samples"),
                     "sigma": k.get("sigma"), "ratio_p50": k.get("ratio_p50"), "ratio_p95": k.get("ratio_p95")})
    for name, t in (cost_model.get("transfers") or {}).items():
        rows.append({"part": "transfer", "name": name, "source": t.get("source"), "samples": t.get("samples"),
                     "sigma": np.nan, "ratio_p50": np.nan, "ratio_p95": t.get("ratio_p95")})
    for s in cost_model.get("startup", []) or []:
        rows.append({"part": "start-up", "name": f"{s.get('profile')} {'cold' if s.get('cold') else 'warm'}",
                     "source": s.get("source"), "samples": s.get("samples"), "sigma": np.nan,
                     "ratio_p50": np.nan, "ratio_p95": np.nan, "mean_s": s.get("mean_s")})
    return pd.DataFrame(rows)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: planned, simulated and real makespan, errors in percent, costs."""
    cols = {name: col for name, col in TABLE_COLUMNS.items() if col in summary}
    table = summary[list(cols.values())].rename(columns={v: k for k, v in cols.items()}).copy()
    for name in [c for c in table.columns if c.endswith("_err_%")]:   # every error column is a fraction
            table[name] = 100 * table[name]
    return table.dropna(axis=1, how="all")


def format_table(summary: pd.DataFrame) -> str:
    """The summary table as fixed-width text (for the terminal and the closing note)."""
    table = summary_table(summary)
    formats = {c: (lambda v: f"{v:.3g}") for c in table.columns if c.endswith("_s")}
    formats.update({c: (lambda v: f"{v:+.1f}") for c in table.columns if c.endswith("_%")})
    formats.update({c: (lambda v: f"{v:.3g}") for c in table.columns if c.endswith("_$")})
    return table.to_string(index=False, formatters=formats, na_rep="-")
