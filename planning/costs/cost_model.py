"""The cost model: what a task costs on a profile, learnt from past runs.

Shape (scikit-learn's): ``CostModel().fit(history)`` then queries -
:meth:`CostModel.estimate` for one (kind, profile), :meth:`CostModel.estimate_workflow`
for a whole workflow on a whole catalog (vectorised), :meth:`CostModel.predict` for
a frame of rows, :meth:`CostModel.transfer_s` / :meth:`CostModel.transfer_distribution`,
:meth:`CostModel.startup_s` / :meth:`CostModel.startup_distribution`, and
:meth:`CostModel.validate` for held-out error; :meth:`CostModel.describe` and
:meth:`CostModel.to_dict` record what was fitted.

The law (per task kind ``k``, ``x`` input bytes, ``c`` CPUs)::

    T = base_k(c, x) * R_k,      base_k(c, x) = (c0_k + c1_k * x) * c ** -a_k,      E[R_k] = 1

* **An intercept** ``c0``: a task with no input still costs something.
* **A fitted CPU exponent** ``a`` per kind, clamped to ``exponent_bounds`` (default
  [0, 1.5]: 0 = CPUs do not help, 1 = perfect scaling, a little above 1 for
  cache/memory effects).  A kind measured on a single CPU count cannot tell its
  exponent; :data:`PRIOR_EXPONENT` is used and estimates on other CPU counts are
  flagged ``"extrapolated"``.
* **Multiplicative noise** ``R``: the empirical ratios observed / base, mean-one.
  The value at an SLA is ``base * SLA.of(R)``: a percentile of *times*, never of
  speeds, so a higher percentile never predicts anything faster.
* **Fitting** is maximum likelihood under lognormal noise: for a candidate knee
  ``x0 = c0 / c1`` the log residual spread is a quadratic in ``a`` whose minimiser is
  closed-form (a covariance over a variance), so only ``x0`` is searched (a grid of
  half-decades around the kind's sizes, then golden section) - for all kinds at once,
  over rows compressed to (kind, CPUs, size) cells.  1M rows fit in well under 5 s.
  Log-space fitting weighs a 0.1 s task as much as a 100 s one, which a least-squares
  fit of raw seconds would not (it lets the largest inputs decide the intercept).
* **Few samples** are not trusted alone: the noise sigma is shrunk towards
  :data:`PRIOR_SIGMA` with ``prior_weight`` pseudo-residuals, below
  ``min_empirical_samples`` residual degrees of freedom the noise is the lognormal
  of that shrunk sigma rather than the handful of observed ratios, and a fitted
  exponent is shrunk towards the prior by a normal prior of sd ``exponent_prior_sd``
  (negligible beyond a few dozen samples, decisive for two).
* **Transfers** ``(latency + bytes / bandwidth) * R`` per direction (download with
  ``input_bytes``/``download_s``, upload with ``output_bytes``/``upload_s``), fitted the same
  way; zero bytes cost zero seconds (nothing is fetched).
* **Start-up** cold and warm separately, per profile when it has at least
  ``min_startup_samples`` rows, else pooled over profiles (flagged ``"extrapolated"``),
  else the defaults (``"prior"``).
* **Flags** (``source``) concern CPUs: ``"history"`` inside the measured CPU range of
  a kind whose exponent was fitted (or on its one measured CPU count),
  ``"extrapolated"`` outside it.  Input sizes beyond the measured ones follow the
  fitted line unflagged: the line is the law, and sizes vary per task.
* **No history of a kind**: the task's hints (``runtime_s`` on ``cores`` CPUs, scaled by
  ``cpus ** -prior_exponent``), else :data:`DEFAULT_EXEC_S` on 1 CPU; always flagged
  ``"prior"`` with a lognormal of :data:`PRIOR_SIGMA`, never a silent zero.

Defaults and why (FACTS.md is the measured evidence):

* ``prior_exponent = 0.5``: the truth lies between 0 (single-threaded code gains
  nothing above one CPU) and 1 (a CPU quota slows a loop x1.9-2.0 at 0.5 CPU, i.e. a
  close to 1 below one CPU); 0.5 minimises the worst-case log error over [0, 1].
* ``prior_sigma = 0.3``: repeats of whole runs differ by 12-14 % (sigma about 0.19 at
  workflow level); single tasks vary more than sums of tasks do.
* ``default_exec_s = 1.0`` s on one CPU: the order of a typical serverless function
  when nothing at all is known; flagged so reports can count such tasks.
* ``default_output_bytes = 1024``: a small pickled result; below about 1 KB bytes are
  nearly free (FACTS), so the guess barely matters but is not zero.
* transfers ``latency 0.5 ms``, ``200 MB/s``: a Redis round trip is 33-210 us plus
  (de)serialisation, and moving data costs 3-8 ms per MiB with serialisation.
* start-up ``cold 0.25 s``: a fresh interpreter importing redis + numpy + cloudpickle
  takes 220-300 ms; ``warm 2 ms``: a live worker only claims its next task, a few
  Redis round trips (145-450 us per task to coordinate) plus bookkeeping.

Known limits: one noise shape per kind (shared by its profiles and sizes); transfers
are per direction, not per profile; a single power law cannot bend at one CPU, as
single-threaded code does (slowed by a quota below one CPU, not sped up above) - a
kind measured on both sides gets the best single exponent, and ``validate`` shows
what that costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from planning.costs.estimates import SOURCES, Estimate, TimeDistribution, WorkflowEstimates
from planning.costs.history import validate_history
from planning.errors import CatalogError, PlanlabError
from planning.profiles import Catalog, ResourceProfile, load_catalog
from planning.sla import SLA
from planning.workflow import Workflow

PRIOR_EXPONENT = 0.5
PRIOR_SIGMA = 0.3
DEFAULT_EXEC_S = 1.0
DEFAULT_OUTPUT_BYTES = 1024.0
DEFAULT_LATENCY_S = 5e-4
DEFAULT_BANDWIDTH_BPS = 200e6
DEFAULT_COLD_START_S = 0.25
DEFAULT_WARM_START_S = 0.002

#: Name of the shared prior noise entry in :attr:`WorkflowEstimates.ratios`.
PRIOR_KIND = "(prior)"
DIRECTIONS = ("download", "upload")

_HISTORY, _EXTRAPOLATED, _PRIOR = 0, 1, 2
_CPU_RTOL = 1e-3           # CPU counts closer than this count as the same (Lambda's are rounded)
_GRID = np.linspace(-4.0, 4.0, 17)  # knee x0 = x_ref * 10**g, half-decade steps
_GOLDEN_STEPS = 24
_PRIOR_GRID = 1024         # points of a lognormal prior's quantile grid


# ====================================================================== fitting
@dataclass
class _LawFit:
    """Per-group results of :func:`_fit_law` (arrays indexed by group)."""

    a: np.ndarray
    a_fitted: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    sigma: np.ndarray
    samples: np.ndarray
    cpus_min: np.ndarray
    cpus_max: np.ndarray
    n_cpus: np.ndarray
    n_sizes: np.ndarray
    ratios: list[np.ndarray]
    noise: list[str]


def lognormal_ratios(sigma: float, points: int = _PRIOR_GRID) -> np.ndarray:
    """A mean-one lognormal as an evenly weighted quantile grid (deterministic, sortable)."""
    from scipy.stats import norm

    z = norm.ppf((np.arange(points) + 0.5) / points)
    r = np.exp(sigma * z - 0.5 * sigma * sigma)
    return r / r.mean()


def _compress(ratios: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly weighted quantiles (linear interpolation), mean one, sorted."""
    ratios = np.sort(ratios)
    if len(ratios) > max_points:
        pos = (np.arange(max_points) + 0.5) / max_points * (len(ratios) - 1)
        ratios = np.interp(pos, np.arange(len(ratios)), ratios)
    return ratios / ratios.mean()


def _fit_law(g: np.ndarray, n_groups: int, t: np.ndarray, x: np.ndarray, cpus: np.ndarray, *,
             fit_exponent: bool, p: dict[str, Any]) -> _LawFit:
    """Fit ``T = (c0 + c1 x) cpus^-a R`` for every group at once (see the module docstring)."""
    logt = np.log(np.maximum(t, p["min_time_s"]))
    L = np.log(cpus)
    cells = (pd.DataFrame({"g": g, "L": L, "x": x, "y": logt, "y2": logt * logt})
             .groupby(["g", "L", "x"], sort=False).agg(n=("y", "size"), s1=("y", "sum"), s2=("y2", "sum"))
             .reset_index())
    cg = cells["g"].to_numpy(np.int64)
    cL, cx = cells["L"].to_numpy(float), cells["x"].to_numpy(float)
    cn, s1, s2 = cells["n"].to_numpy(float), cells["s1"].to_numpy(float), cells["s2"].to_numpy(float)

    def per_group(values: np.ndarray) -> np.ndarray:
        return np.bincount(cg, values, minlength=n_groups)

    N = per_group(cn)
    n_cpus = np.bincount(cells[["g", "L"]].drop_duplicates()["g"].to_numpy(np.int64), minlength=n_groups)
    sizes = cells[["g", "x"]].drop_duplicates()
    n_sizes = np.bincount(sizes["g"].to_numpy(np.int64), minlength=n_groups)
    pos = sizes[sizes["x"] > 0]
    log_ref = np.bincount(pos["g"].to_numpy(np.int64), np.log(pos["x"].to_numpy(float)), minlength=n_groups)
    n_pos = np.bincount(pos["g"].to_numpy(np.int64), minlength=n_groups)
    x_ref = np.exp(np.divide(log_ref, n_pos, out=np.zeros(n_groups), where=n_pos > 0))
    size_fit = n_sizes >= 2
    cpus_range = cells.groupby("g")["L"].agg(["min", "max"]).reindex(range(n_groups))
    cpus_min, cpus_max = np.exp(cpus_range["min"].to_numpy(float)), np.exp(cpus_range["max"].to_numpy(float))
    safeN = np.maximum(N, 1.0)
    VL = per_group(cn * cL * cL) / safeN - (per_group(cn * cL) / safeN) ** 2
    exp_fit = fit_exponent & (n_cpus >= 2) & (VL > 1e-12)
    lo, hi = p["exponent_bounds"]
    a_prior = p["prior_exponent"] if fit_exponent else 0.0

    def evaluate(gexp: np.ndarray, sel: slice | np.ndarray = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        # objective (log residual variance) and best exponent per group; cells ``sel`` only
        g_, n_, x_, L_, a1, a2 = cg[sel], cn[sel], cx[sel], cL[sel], s1[sel], s2[sel]

        def tot(values: np.ndarray) -> np.ndarray:
            return np.bincount(g_, values, minlength=n_groups)

        x0 = x_ref * 10.0 ** gexp
        h = np.where(size_fit[g_], np.log1p(x_ / np.where(x0 > 0, x0, 1.0)[g_]), 0.0)
        z1 = a1 - n_ * h
        M = np.maximum(tot(n_), 1.0)
        SLs, SLLs = tot(n_ * L_), tot(n_ * L_ * L_)
        Sz, Szz, SzL = tot(z1), tot(a2 - 2 * h * a1 + n_ * h * h), tot(L_ * z1)
        mz, mL = Sz / M, SLs / M
        Vz, C, VLs = Szz / M - mz * mz, SzL / M - mz * mL, SLLs / M - mL * mL
        fit_here = exp_fit & (VLs > 1e-12)
        a = np.where(fit_here, np.clip(-C / np.where(fit_here, VLs, 1.0), lo, hi), a_prior)
        return np.maximum(Vz + 2 * a * C + a * a * VLs, 0.0), a

    # knee search on at most max_search_cells cells (a seeded subset: the knee is a
    # smooth function of thousands of cells), grid then golden section inside the
    # best grid bracket; the final exponent and spread use every cell
    search: slice | np.ndarray = slice(None)
    if len(cg) > p["max_search_cells"]:
        search = np.sort(np.random.default_rng(0).choice(len(cg), p["max_search_cells"], replace=False))
    objs = np.array([evaluate(np.full(n_groups, gv), search)[0] for gv in _GRID])
    best = objs.argmin(axis=0)
    left, right = _GRID[np.maximum(best - 1, 0)], _GRID[np.minimum(best + 1, len(_GRID) - 1)]
    inv = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = right - inv * (right - left), left + inv * (right - left)
    fc, fd = evaluate(c, search)[0], evaluate(d, search)[0]
    for _ in range(_GOLDEN_STEPS):
        go_left = fc < fd
        right, left = np.where(go_left, d, right), np.where(go_left, left, c)
        new_c, new_d = right - inv * (right - left), left + inv * (right - left)
        f_new = evaluate(np.where(go_left, new_c, new_d), search)[0]
        c, fc, d, fd = (np.where(go_left, new_c, d), np.where(go_left, f_new, fd),
                        np.where(go_left, c, new_d), np.where(go_left, fc, f_new))
    gexp = np.where(size_fit, (left + right) / 2.0, 0.0)
    obj, a_hat = evaluate(gexp)
    x0 = np.where(size_fit, x_ref * 10.0 ** gexp, np.inf)

    # residual spread -> sigma (dof-corrected, shrunk towards the prior)
    n_par = 1 + exp_fit.astype(int) + size_fit.astype(int)
    dof = np.maximum(N - n_par, 0.0)
    s2_hat = np.divide(obj * N, dof, out=np.zeros(n_groups), where=dof > 0)
    k0 = p["prior_weight"]
    sigma = np.sqrt((dof * s2_hat + k0 * p["prior_sigma"] ** 2) / (dof + k0))
    # a weak normal prior on the exponent
    if fit_exponent:
        prec = N * VL / np.maximum(sigma * sigma, 1e-12)
        prior_prec = 1.0 / p["exponent_prior_sd"] ** 2
        a_post = (a_hat * prec + p["prior_exponent"] * prior_prec) / (prec + prior_prec)
        a = np.where(exp_fit, np.clip(a_post, lo, hi), a_prior)
    else:
        a = np.zeros(n_groups)

    # row residuals -> scale (mean-one noise) and the noise distribution
    x0_row = x0[g]
    h_row = np.where(np.isfinite(x0_row), np.log1p(x / np.where(np.isfinite(x0_row), x0_row, 1.0)), 0.0)
    r = logt + a[g] * L - h_row
    mu = np.bincount(g, r, minlength=n_groups) / safeN
    dev = r - mu[g]
    inflate = np.sqrt(np.divide(N, dof, out=np.ones(n_groups), where=dof > 0))  # undo fitted-parameter shrinkage
    e = np.exp(dev * inflate[g])
    m = np.bincount(g, np.exp(dev), minlength=n_groups) / safeN
    c0 = np.exp(mu) * m
    c1 = np.where(size_fit, c0 / np.where(np.isfinite(x0), x0, 1.0), 0.0)

    order = np.argsort(g, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(g, minlength=n_groups))])
    ratios, noise = [], []
    for k in range(n_groups):
        if dof[k] >= p["min_empirical_samples"]:
            ratios.append(_compress(e[order[bounds[k]:bounds[k + 1]]], p["max_ratio_samples"]))
            noise.append("empirical")
        else:
            ratios.append(lognormal_ratios(float(sigma[k])))
            noise.append("lognormal")
    return _LawFit(a=a, a_fitted=exp_fit, c0=c0, c1=c1, sigma=sigma, samples=N.astype(np.int64),
                   cpus_min=cpus_min, cpus_max=cpus_max, n_cpus=n_cpus, n_sizes=n_sizes, ratios=ratios, noise=noise)


def _fit_linear_nonneg(g: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y = b0 + b1 x`` per group, both >= 0, weighted for relative error (IRLS on the fit, unbiased)."""
    w = np.ones_like(x)
    b0 = b1 = np.zeros(n_groups)
    for _ in range(3):
        Sw, Sx, Sxx = (np.bincount(g, v, minlength=n_groups) for v in (w, w * x, w * x * x))
        Sy, Sxy = (np.bincount(g, v, minlength=n_groups) for v in (w * y, w * x * y))
        det = Sw * Sxx - Sx * Sx
        ok = det > 1e-9 * np.maximum(Sw * Sxx, 1e-300)
        b1 = np.where(ok, (Sw * Sxy - Sx * Sy) / np.where(ok, det, 1.0), 0.0)
        b0 = np.where(ok, (Sy - b1 * Sx) / np.maximum(Sw, 1e-300), Sy / np.maximum(Sw, 1e-300))
        prop = ok & (b0 < 0)
        b0, b1 = np.where(prop, 0.0, b0), np.where(prop, Sxy / np.maximum(Sxx, 1e-300), b1)
        const = b1 < 0
        b0, b1 = np.where(const, Sy / np.maximum(Sw, 1e-300), b0), np.where(const, 0.0, b1)
        w = 1.0 / np.maximum(b0[g] + b1[g] * x, 1.0) ** 2
    return b0, b1


# ====================================================================== the model
@dataclass
class _Transfer:
    latency_s: float
    s_per_byte: float
    ratios: np.ndarray
    samples: int = 0
    source: str = "prior"


class CostModel:
    """Execution, output, transfer and start-up estimates at a chosen SLA statistic.

    Unfitted, every answer is a documented prior (flagged), so a planner works with
    no history at all.  Parameters are the priors and fitting knobs described in the
    module docstring.
    """

    def __init__(self, *, prior_exponent: float = PRIOR_EXPONENT, prior_sigma: float = PRIOR_SIGMA,
                 default_exec_s: float = DEFAULT_EXEC_S, default_output_bytes: float = DEFAULT_OUTPUT_BYTES,
                 latency_s: float = DEFAULT_LATENCY_S, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
                 cold_start_s: float = DEFAULT_COLD_START_S, warm_start_s: float = DEFAULT_WARM_START_S,
                 exponent_bounds: tuple[float, float] = (0.0, 1.5), exponent_prior_sd: float = 0.5,
                 prior_weight: float = 5.0, min_empirical_samples: int = 50, min_startup_samples: int = 5,
                 max_ratio_samples: int = 2048, max_search_cells: int = 100_000, min_time_s: float = 1e-6) -> None:
        lo, hi = exponent_bounds
        checks = {"prior_sigma": prior_sigma > 0, "default_exec_s": default_exec_s > 0,
                  "default_output_bytes": default_output_bytes >= 0, "latency_s": latency_s >= 0,
                  "bandwidth_Bps": bandwidth_Bps > 0, "cold_start_s": cold_start_s >= 0,
                  "warm_start_s": warm_start_s >= 0, "exponent_bounds": 0 <= lo <= hi,
                  "prior_exponent": lo <= prior_exponent <= hi, "exponent_prior_sd": exponent_prior_sd > 0,
                  "prior_weight": prior_weight >= 0, "max_ratio_samples": max_ratio_samples >= 16,
                  "max_search_cells": max_search_cells >= 1000,
                  "min_time_s": min_time_s > 0}
        for name, ok in checks.items():
            if not ok:
                raise PlanlabError(f"CostModel: invalid {name}", "see the CostModel docstring for valid ranges")
        self.params: dict[str, Any] = dict(
            prior_exponent=float(prior_exponent), prior_sigma=float(prior_sigma), default_exec_s=float(default_exec_s),
            default_output_bytes=float(default_output_bytes), latency_s=float(latency_s),
            bandwidth_Bps=float(bandwidth_Bps), cold_start_s=float(cold_start_s), warm_start_s=float(warm_start_s),
            exponent_bounds=(float(lo), float(hi)), exponent_prior_sd=float(exponent_prior_sd),
            prior_weight=float(prior_weight), min_empirical_samples=int(min_empirical_samples),
            min_startup_samples=int(min_startup_samples), max_ratio_samples=int(max_ratio_samples),
            max_search_cells=int(max_search_cells),
            min_time_s=float(min_time_s))
        self._fitted = False
        self._prior_ratios = lognormal_ratios(self.params["prior_sigma"])
        self._reset()

    def _reset(self) -> None:
        """All priors: the state of an unfitted model."""
        self._set_kinds([], None, np.zeros(0), np.zeros(0))
        prior_transfer = _Transfer(self.params["latency_s"], 1.0 / self.params["bandwidth_Bps"], self._prior_ratios)
        self._transfers: dict[str, _Transfer] = {d: prior_transfer for d in DIRECTIONS}
        self._startup: dict[tuple[str, bool], TimeDistribution] = {}
        self._startup_pooled: dict[bool, TimeDistribution] = {
            cold: TimeDistribution(self.params["cold_start_s" if cold else "warm_start_s"], self._prior_ratios, 0, "prior")
            for cold in (True, False)}
        self._sla_cache: dict[SLA, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        # expose the parameters read-only as attributes (model.prior_exponent ...)
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        state = f"{len(self._kinds)} kinds" if self._fitted else "unfitted (priors only)"
        return f"CostModel({state})"

    # ------------------------------------------------------------------ fitting
    @property
    def fitted(self) -> bool:
        return self._fitted

    @property
    def kinds(self) -> list[str]:
        """Kinds that have history (fitted laws)."""
        return list(self._kinds)

    def fit(self, history: pd.DataFrame) -> "CostModel":
        """Fit every law from a history (validated with :func:`validate_history`); returns self."""
        return self._fit_validated(validate_history(history))

    def _fit_validated(self, h: pd.DataFrame) -> "CostModel":
        p = self.params
        self._reset()
        codes, names = pd.factorize(h["kind"], sort=True)
        codes = codes.astype(np.int64)
        x, cpus = h["input_bytes"].to_numpy(float), h["cpus"].to_numpy(float)
        law = _fit_law(codes, len(names), h["exec_s"].to_numpy(float), x, cpus, fit_exponent=True, p=p) \
            if len(names) else None
        out0, out1 = _fit_linear_nonneg(codes, len(names), x, h["output_bytes"].to_numpy(float))
        self._set_kinds([str(k) for k in names], law, out0, out1)
        self._fit_transfers(h)
        self._fit_startup(h)
        self._fitted = True
        self._sla_cache.clear()
        return self

    def _set_kinds(self, names: list[str], law: _LawFit | None, out0: np.ndarray, out1: np.ndarray) -> None:
        """Store per-kind arrays with one extra slot (index ``len(names)``) for priors."""
        p = self.params
        K = len(names)
        self._kinds = names
        self._kind_pos = {k: i for i, k in enumerate(names)}

        def ext(values: np.ndarray | None, prior: float, dtype: Any = float) -> np.ndarray:
            values = np.zeros(0, dtype) if values is None else np.asarray(values, dtype)
            return np.concatenate([values, np.array([prior], dtype)])

        self._law = law
        self._a = ext(law.a if law else None, p["prior_exponent"])
        self._a_fitted = ext(law.a_fitted if law else None, False, bool)
        self._c0 = ext(law.c0 if law else None, p["default_exec_s"])
        self._c1 = ext(law.c1 if law else None, 0.0)
        self._samples = ext(law.samples if law else None, 0, np.int64)
        self._cpus_min = ext(law.cpus_min if law else None, np.nan)
        self._cpus_max = ext(law.cpus_max if law else None, np.nan)
        self._out0 = ext(out0 if K else None, p["default_output_bytes"])
        self._out1 = ext(out1 if K else None, 0.0)
        self._ratios = (list(law.ratios) if law else []) + [self._prior_ratios]

    def _fit_transfers(self, h: pd.DataFrame) -> None:
        p = self.params
        for direction, bcol, tcol in (("download", "input_bytes", "download_s"), ("upload", "output_bytes", "upload_s")):
            rows = h[h[bcol] > 0]
            if rows.empty:
                continue
            x, t = rows[bcol].to_numpy(float), rows[tcol].to_numpy(float)
            g = np.zeros(len(rows), np.int64)
            fit = _fit_law(g, 1, t, x, np.ones(len(rows)), fit_exponent=False, p=p)
            lat, spb = float(fit.c0[0]), float(fit.c1[0])
            if fit.n_sizes[0] < 2:
                # one size cannot split latency from bandwidth: keep the prior latency (at most half the time)
                lat = min(p["latency_s"], 0.5 * float(t.mean()))
                spb = max(float(t.mean()) - lat, 0.0) / float(x.mean())
            self._transfers[direction] = _Transfer(lat, spb, fit.ratios[0], int(fit.samples[0]), "history")

    def _fit_startup(self, h: pd.DataFrame) -> None:
        p = self.params
        self._startup = {}
        for (profile, cold), times in h.groupby(["profile", "cold_start"], sort=True)["startup_s"]:
            if len(times) >= p["min_startup_samples"]:
                self._startup[(str(profile), bool(cold))] = self._empirical(times.to_numpy(float), "history")
        for cold, times in h.groupby("cold_start")["startup_s"]:
            self._startup_pooled[bool(cold)] = self._empirical(times.to_numpy(float), "extrapolated")

    def _empirical(self, times: np.ndarray, source: str) -> TimeDistribution:
        mean = float(times.mean())
        if mean <= 0:
            return TimeDistribution(0.0, np.ones(1), len(times), source)
        return TimeDistribution(mean, _compress(times / mean, self.params["max_ratio_samples"]), len(times), source)

    # ------------------------------------------------------------------ the vectorised core
    def _kind_codes(self, kinds: Sequence[str] | np.ndarray) -> np.ndarray:
        """Index of each kind; ``len(kinds)`` (the prior slot) for kinds without history."""
        K = len(self._kinds)
        if K == 0:
            return np.zeros(len(kinds), np.int64)
        if len(kinds) <= 20_000:   # a dict lookup per task beats building a pandas Index for small inputs
            pos = self._kind_pos
            return np.fromiter((pos.get(k, K) for k in kinds), np.int64, len(kinds))
        idx = pd.Index(self._kinds).get_indexer(pd.Index(np.asarray(kinds, dtype=object)))
        return np.where(idx < 0, K, idx).astype(np.int64)

    def _exec_base(self, kidx: np.ndarray, x: np.ndarray, cpus: np.ndarray, hint_rt: np.ndarray,
                   hint_cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean seconds and source code; all arguments broadcast elementwise (rows or a matrix)."""
        p = self.params
        known = kidx < len(self._kinds)
        law = (self._c0[kidx] + self._c1[kidx] * x) * cpus ** -self._a[kidx]
        rt = np.where(np.isnan(hint_rt), p["default_exec_s"], hint_rt)
        rc = np.where(np.isnan(hint_cores) | (hint_cores <= 0), 1.0, hint_cores)
        prior = rt * (cpus / rc) ** -p["prior_exponent"]
        base = np.maximum(np.where(known, law, prior), p["min_time_s"])
        lo, hi = self._cpus_min[kidx], self._cpus_max[kidx]
        inside = (cpus >= lo * (1 - _CPU_RTOL)) & (cpus <= hi * (1 + _CPU_RTOL))
        src = np.where(known, np.where(inside, _HISTORY, _EXTRAPOLATED), _PRIOR).astype(np.int8)
        return base, src

    def _output(self, kidx: np.ndarray, x: np.ndarray, hint_out: np.ndarray) -> np.ndarray:
        known = kidx < len(self._kinds)
        law = np.maximum(self._out0[kidx] + self._out1[kidx] * x, 0.0)
        prior = np.where(np.isnan(hint_out), self.params["default_output_bytes"], hint_out)
        return np.where(known, law, prior)

    def ratio_at(self, sla: "SLA | str") -> np.ndarray:
        """``SLA.of(R)`` of every kind (last entry: the prior), cached per SLA."""
        sla = SLA.parse(sla)
        if sla not in self._sla_cache:
            self._sla_cache[sla] = np.array([float(sla.of(r)) for r in self._ratios])
        return self._sla_cache[sla]

    # ------------------------------------------------------------------ queries
    def estimate(self, kind: str, profile: ResourceProfile, input_bytes: float, sla: "SLA | str", *,
                 runtime_hint_s: float | None = None, hint_cores: float | None = None,
                 output_hint_bytes: float | None = None) -> Estimate:
        """Execution seconds at ``sla`` of one kind on one profile, with its distribution.

        Hints are used only when the kind has no history (``source="prior"``).
        """
        sla = SLA.parse(sla)
        if not isinstance(profile, ResourceProfile):
            raise CatalogError(f"estimate needs a ResourceProfile, got {type(profile).__name__}",
                               "look the profile up in a catalog: load_catalog(name)[profile_name]")
        x = _check_bytes(input_bytes, "input_bytes")
        kidx = self._kind_codes([kind])
        args = [np.array([np.nan if v is None else float(v)]) for v in (runtime_hint_s, hint_cores, output_hint_bytes)]
        base, src = self._exec_base(kidx, np.array([x]), np.array([float(profile.cpus)]), args[0], args[1])
        k = int(kidx[0])
        samples, source = int(self._samples[k]), SOURCES[int(src[0])]
        dist = TimeDistribution(float(base[0]), self._ratios[k], samples, source)
        return Estimate(exec_s=float(base[0] * self.ratio_at(sla)[k]),
                        output_bytes=float(self._output(kidx, np.array([x]), args[2])[0]),
                        samples=samples, source=source, distribution=dist, kind=str(kind), profile=profile.name,
                        input_bytes=x, sla=sla)

    def predict(self, frame: pd.DataFrame, sla: "SLA | str") -> pd.DataFrame:
        """Row-wise estimates for a frame with ``kind``, ``cpus``, ``input_bytes`` (optional
        ``runtime_s``, ``cores``, ``output_hint_bytes`` hints): columns ``exec_s``,
        ``base_exec_s``, ``output_bytes``, ``samples``, ``source``, same index."""
        sla = SLA.parse(sla)
        kidx = self._kind_codes(frame["kind"].to_numpy(object))
        n = len(frame)

        def col(name: str) -> np.ndarray:
            return frame[name].to_numpy(float) if name in frame.columns else np.full(n, np.nan)

        x = frame["input_bytes"].to_numpy(float)
        base, src = self._exec_base(kidx, x, frame["cpus"].to_numpy(float), col("runtime_s"), col("cores"))
        return pd.DataFrame({"exec_s": base * self.ratio_at(sla)[kidx], "base_exec_s": base,
                             "output_bytes": self._output(kidx, x, col("output_hint_bytes")),
                             "samples": self._samples[kidx], "source": np.asarray(SOURCES, dtype=object)[src]},
                            index=frame.index)

    def estimate_workflow(self, workflow: Workflow, catalog: "Catalog | str", sla: "SLA | str") -> WorkflowEstimates:
        """Every task on every profile, vectorised: O(tasks x profiles) array work plus one pass over the graph.

        A task's input bytes are the sum of its in-edges' bytes.
        """
        sla = SLA.parse(sla)
        catalog = load_catalog(catalog)
        topo = workflow.topology()
        order = list(topo.ids)
        x = topo.in_bytes.copy()
        kidx = self._kind_codes(topo.kinds)
        cpus = np.array([p.cpus for p in catalog], float)
        base, src = self._exec_base(kidx[:, None], x[:, None], cpus[None, :], topo.runtime_hint_s[:, None],
                                    topo.cores_hint[:, None])
        ratio = self.ratio_at(sla)
        src_names = np.asarray(SOURCES, dtype=object)
        return WorkflowEstimates(
            task_ids=order, profiles=catalog.names, sla=sla, exec_s=base * ratio[kidx][:, None], base_exec_s=base,
            output_bytes=self._output(kidx, x, topo.output_hint_bytes), samples=self._samples[kidx].copy(),
            source=src_names[src.max(axis=1)], kind_index=kidx, ratios=list(self._ratios), ratio_at_sla=ratio.copy(),
            source_by_profile=src_names[src], input_bytes=x, kinds=self._kinds + [PRIOR_KIND])

    def transfer_distribution(self, nbytes: float, direction: str) -> TimeDistribution:
        """Seconds to move ``nbytes`` one way: ``(latency + bytes / bandwidth) * R``; zero bytes, zero time."""
        tr = self._transfer(direction)
        x = _check_bytes(nbytes, "nbytes")
        scale = tr.latency_s + x * tr.s_per_byte if x > 0 else 0.0
        return TimeDistribution(scale, tr.ratios, tr.samples, tr.source)

    def transfer_s(self, nbytes: "np.ndarray | float", direction: str, sla: "SLA | str") -> "np.ndarray | float":
        """Seconds at ``sla`` to download or upload ``nbytes`` (vectorised over ``nbytes``)."""
        tr = self._transfer(direction)
        factor = float(SLA.parse(sla).of(tr.ratios))
        arr = np.asarray(nbytes, dtype=float)
        if np.any(~np.isfinite(arr)) or np.any(arr < 0):
            raise PlanlabError(f"transfer sizes must be finite bytes >= 0 (got {nbytes!r})", "pass non-negative sizes")
        out = np.where(arr > 0, (tr.latency_s + arr * tr.s_per_byte) * factor, 0.0)
        return float(out) if out.ndim == 0 else out

    def sample_transfer_s(self, rng: np.random.Generator, nbytes: "np.ndarray | float", direction: str) -> np.ndarray:
        """One random transfer time per element of ``nbytes`` (for Monte Carlo; zero bytes, zero time)."""
        tr = self._transfer(direction)
        arr = np.asarray(nbytes, dtype=float)
        draws = tr.ratios[rng.integers(0, len(tr.ratios), size=arr.shape)]
        return np.where(arr > 0, (tr.latency_s + arr * tr.s_per_byte) * draws, 0.0)

    def _transfer(self, direction: str) -> _Transfer:
        try:
            return self._transfers[direction]
        except KeyError:
            raise PlanlabError(f"unknown transfer direction {direction!r}", "use 'download' or 'upload'") from None

    def startup_distribution(self, profile: "ResourceProfile | str", cold: bool) -> TimeDistribution:
        """Worker start-up seconds: this profile's history, else all profiles' (``"extrapolated"``), else the prior."""
        name = profile.name if isinstance(profile, ResourceProfile) else str(profile)
        return self._startup.get((name, bool(cold)), self._startup_pooled[bool(cold)])

    def startup_s(self, profile: "ResourceProfile | str", cold: bool, sla: "SLA | str") -> float:
        """Worker start-up seconds at ``sla`` (cold: a new worker; warm: a live one takes the task)."""
        return self.startup_distribution(profile, cold).at(sla)

    # ------------------------------------------------------------------ validation
    def validate(self, history: pd.DataFrame, folds: int = 5, statistics: Sequence[str] = ("mean", "p95"),
                 seed: int = 0, min_group: int = 5) -> pd.DataFrame:
        """k-fold held-out error of execution estimates, per kind and statistic.

        Every row is predicted by a model fitted without its fold (same parameters
        as this one).  Rows are grouped by (kind, profile, input size) - sizes binned
        into 16 log-quantile bins when a kind has more than 64 distinct sizes - and,
        for each group of at least ``min_group`` rows, the statistic of the observed
        times is compared with the mean of the held-out predictions.  ``mape`` is the
        mean absolute percentage error over groups (a fraction: 0.05 = 5 %).  In a
        binned group the mean is compared exactly; a percentile of the mixture is
        compared with the mean of the rows' percentiles, which overstates p95 error a
        little.

        A group's own empirical statistic is noisy too, so ``floor`` is the MAPE a
        model knowing the truth would score against groups of these sizes (simulated
        from the kind's fitted noise): ``mape`` close to ``floor`` means the model is
        as good as these data can show.  Columns: ``kind``, ``statistic``, ``mape``,
        ``samples`` (rows of the kind), ``groups`` (groups scored), ``floor``.
        """
        h = validate_history(history)
        columns = ["kind", "statistic", "mape", "samples", "groups", "floor"]
        if len(h) < 2:
            return pd.DataFrame(columns=columns)
        folds = int(max(2, min(folds, len(h))))
        slas = [SLA.parse(s) for s in statistics]
        rng = np.random.default_rng(seed)
        fold = rng.permutation(len(h)) % folds
        preds = {s: np.empty(len(h)) for s in slas}
        for f in range(folds):
            test = fold == f
            model = CostModel(**self.params)._fit_validated(h.loc[~test].reset_index(drop=True))
            for s in slas:
                preds[s][test] = model.predict(h.loc[test], s)["exec_s"].to_numpy()
        full = CostModel(**self.params)._fit_validated(h)
        frame = pd.DataFrame({"kind": h["kind"], "profile": h["profile"], "bin": _size_bins(h), "t": h["exec_s"]})
        samples = h.groupby("kind").size()
        rows = []
        for s in slas:
            frame["pred"] = preds[s]
            grouped = frame.groupby(["kind", "profile", "bin"], sort=True)
            stats = grouped.agg(n=("t", "size"), pred=("pred", "mean"))
            stats["obs"] = grouped["t"].mean() if s.kind == "mean" else grouped["t"].quantile(s.q)
            stats = stats[(stats["n"] >= min_group) & (stats["obs"] > 0)]
            stats["ape"] = (stats["pred"] - stats["obs"]).abs() / stats["obs"]
            for kind, per_kind in stats.groupby(level="kind"):
                ratios = full._ratios[full._kind_pos[kind]]
                by_n = {n: _sampling_error(ratios, int(n), s, rng) for n in np.unique(per_kind["n"])}
                floor = np.mean([by_n[n] for n in per_kind["n"]])
                rows.append({"kind": kind, "statistic": s.name, "mape": float(per_kind["ape"].mean()),
                             "samples": int(samples[kind]), "groups": int(len(per_kind)), "floor": float(floor)})
        return pd.DataFrame(rows, columns=columns)

    # ------------------------------------------------------------------ provenance
    def describe(self) -> pd.DataFrame:
        """What was fitted per kind: one row each (empty when unfitted)."""
        rows = []
        law = self._law
        for i, kind in enumerate(self._kinds):
            r = self._ratios[i]
            rows.append({"kind": kind, "source": "history" if law.a_fitted[i] else "extrapolated",
                         "a": float(law.a[i]), "a_source": "fitted" if law.a_fitted[i] else "prior",
                         "c0": float(law.c0[i]), "c1": float(law.c1[i]), "sigma": float(law.sigma[i]),
                         "noise": law.noise[i], "samples": int(law.samples[i]), "cpus_min": float(law.cpus_min[i]),
                         "cpus_max": float(law.cpus_max[i]), "n_cpus": int(law.n_cpus[i]),
                         "n_sizes": int(law.n_sizes[i]), "out0": float(self._out0[i]), "out1": float(self._out1[i]),
                         "ratio_p50": float(np.quantile(r, 0.5)), "ratio_p95": float(np.quantile(r, 0.95))})
        return pd.DataFrame(rows, columns=["kind", "source", "a", "a_source", "c0", "c1", "sigma", "noise", "samples",
                                           "cpus_min", "cpus_max", "n_cpus", "n_sizes", "out0", "out1", "ratio_p50",
                                           "ratio_p95"])

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted values as plain JSON-able data, for provenance."""
        params = dict(self.params, exponent_bounds=list(self.params["exponent_bounds"]))
        transfers = {d: {"latency_s": t.latency_s, "bandwidth_Bps": (1.0 / t.s_per_byte) if t.s_per_byte > 0 else None,
                         "samples": t.samples, "source": t.source, "ratio_p95": float(np.quantile(t.ratios, 0.95))}
                     for d, t in self._transfers.items()}
        startup = [{"profile": name, "cold": cold, "mean_s": d.mean(), "p95_s": float(d.quantile(0.95)),
                    "samples": d.samples, "source": d.source} for (name, cold), d in sorted(self._startup.items())]
        startup += [{"profile": "*", "cold": cold, "mean_s": d.mean(), "p95_s": float(d.quantile(0.95)),
                     "samples": d.samples, "source": d.source} for cold, d in sorted(self._startup_pooled.items())]
        return {"model": "planlab.CostModel/1", "fitted": self._fitted, "params": params,
                "kinds": self.describe().to_dict(orient="records"), "transfers": transfers, "startup": startup}


# ====================================================================== helpers
def _check_bytes(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PlanlabError(f"{name} must be a number of bytes, got {value!r}", f"pass {name} >= 0") from None
    if not math.isfinite(v) or v < 0:
        raise PlanlabError(f"{name} must be a finite number of bytes >= 0, got {value!r}", f"pass {name} >= 0")
    return v


def _sampling_error(ratios: np.ndarray, n: int, sla: SLA, rng: np.random.Generator, reps: int = 400) -> float:
    """Mean |relative error| of ``sla`` measured on ``n`` draws from ``ratios`` (a sampling-noise floor)."""
    draws = ratios[rng.integers(0, len(ratios), size=(reps, n))]
    truth = float(sla.of(ratios))
    return float(np.mean(np.abs(sla.of(draws, axis=1) / truth - 1.0)))


def _size_bins(h: pd.DataFrame) -> np.ndarray:
    """Exact input sizes, or 16 log-quantile bins for kinds with more than 64 distinct sizes."""
    bins = h["input_bytes"].to_numpy(float).copy()
    for kind, idx in h.groupby("kind").indices.items():
        sizes = bins[idx]
        if len(np.unique(sizes)) > 64:
            bins[idx] = pd.qcut(np.log1p(sizes), 16, labels=False, duplicates="drop").astype(float)
    return bins


def validate_cost_model(history: pd.DataFrame, folds: int = 5, statistics: Sequence[str] = ("mean", "p95"),
                        seed: int = 0, **params: Any) -> pd.DataFrame:
    """:meth:`CostModel.validate` with a fresh model of the given parameters."""
    return CostModel(**params).validate(history, folds=folds, statistics=statistics, seed=seed)
