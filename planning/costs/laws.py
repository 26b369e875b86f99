"""The cost model's fitting: the law of every task kind at once, transfers and start-ups.

The law (per task kind ``k``, ``x`` input bytes, ``c`` CPUs)::

    T = base_k(c, x) * R_k,      base_k(c, x) = (c0_k + c1_k * x) * c ** -a_k,      E[R_k] = 1

* **Fitting** is maximum likelihood under lognormal noise: for a candidate knee
  ``x0 = c0 / c1`` the log residual spread is a quadratic in ``a`` whose minimiser is
  closed-form (a covariance over a variance), so only ``x0`` is searched (a grid of
  half-decades around the kind's sizes, then golden section) - for all kinds at once,
  over rows compressed to (kind, CPUs, size) cells.  1M rows fit in well under 5 s.
  Log-space fitting weighs a 0.1 s task as much as a 100 s one, which a least-squares
  fit of raw seconds would not (it lets the largest inputs decide the intercept).
* **Few samples** are not trusted alone: the noise sigma is shrunk towards
  ``prior_sigma`` with ``prior_weight`` pseudo-residuals, below
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

The knobs (``p``) are :class:`~planning.costs.cost_model.CostModel`'s parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from planning.costs.estimates import TimeDistribution

_GRID = np.linspace(-4.0, 4.0, 17)  # knee x0 = x_ref * 10**g, half-decade steps
_GOLDEN_STEPS = 24
_PRIOR_GRID = 1024         # points of a lognormal prior's quantile grid


@dataclass
class LawFit:
    """Per-group results of :func:`fit_law` (arrays indexed by group)."""

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
    from scipy.special import ndtri   # the normal quantile (what scipy.stats' norm.ppf returns) without scipy.stats

    z = ndtri((np.arange(points) + 0.5) / points)
    r = np.exp(sigma * z - 0.5 * sigma * sigma)
    return r / r.mean()


def compress_ratios(ratios: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly weighted quantiles (linear interpolation), mean one, sorted."""
    ratios = np.sort(ratios)
    if len(ratios) > max_points:
        pos = (np.arange(max_points) + 0.5) / max_points * (len(ratios) - 1)
        ratios = np.interp(pos, np.arange(len(ratios)), ratios)
    return ratios / ratios.mean()


@dataclass
class _Cells:
    """Rows compressed to (group, log CPUs, size) cells, with the per-group statistics the knee search needs."""

    n_groups: int
    g: np.ndarray          # per cell: group, log CPUs, size, rows, sum and sum of squares of log times
    L: np.ndarray
    x: np.ndarray
    n: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    N: np.ndarray          # per group: rows, CPU counts, sizes, reference size, ...
    n_cpus: np.ndarray
    n_sizes: np.ndarray
    x_ref: np.ndarray
    size_fit: np.ndarray
    cpus_min: np.ndarray
    cpus_max: np.ndarray
    VL: np.ndarray
    exp_fit: np.ndarray
    bounds: tuple[float, float]
    a_prior: float

    def evaluate(self, gexp: np.ndarray, sel: slice | np.ndarray = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Objective (log residual variance) and best exponent per group at knees ``x_ref * 10**gexp``; cells ``sel``."""
        n_groups, lo, hi = self.n_groups, *self.bounds
        g_, n_, x_, L_, a1, a2 = self.g[sel], self.n[sel], self.x[sel], self.L[sel], self.s1[sel], self.s2[sel]

        def tot(values: np.ndarray) -> np.ndarray:
            return np.bincount(g_, values, minlength=n_groups)

        x0 = self.x_ref * 10.0 ** gexp
        h = np.where(self.size_fit[g_], np.log1p(x_ / np.where(x0 > 0, x0, 1.0)[g_]), 0.0)
        z1 = a1 - n_ * h
        M = np.maximum(tot(n_), 1.0)
        SLs, SLLs = tot(n_ * L_), tot(n_ * L_ * L_)
        Sz, Szz, SzL = tot(z1), tot(a2 - 2 * h * a1 + n_ * h * h), tot(L_ * z1)
        mz, mL = Sz / M, SLs / M
        Vz, C, VLs = Szz / M - mz * mz, SzL / M - mz * mL, SLLs / M - mL * mL
        fit_here = self.exp_fit & (VLs > 1e-12)
        a = np.where(fit_here, np.clip(-C / np.where(fit_here, VLs, 1.0), lo, hi), self.a_prior)
        return np.maximum(Vz + 2 * a * C + a * a * VLs, 0.0), a


def _cells(g: np.ndarray, n_groups: int, logt: np.ndarray, x: np.ndarray, L: np.ndarray, *, fit_exponent: bool,
           p: dict[str, Any]) -> _Cells:
    """Compress the rows to cells and compute what every group's fit needs (sizes, CPU range, exponent fit)."""
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
    cpus_range = cells.groupby("g")["L"].agg(["min", "max"]).reindex(range(n_groups))
    safeN = np.maximum(N, 1.0)
    VL = per_group(cn * cL * cL) / safeN - (per_group(cn * cL) / safeN) ** 2
    lo, hi = p["exponent_bounds"]
    return _Cells(n_groups, cg, cL, cx, cn, s1, s2, N, n_cpus, n_sizes, x_ref, n_sizes >= 2,
                  np.exp(cpus_range["min"].to_numpy(float)), np.exp(cpus_range["max"].to_numpy(float)), VL,
                  fit_exponent & (n_cpus >= 2) & (VL > 1e-12), (lo, hi),
                  p["prior_exponent"] if fit_exponent else 0.0)


def _knee_exponents(cells: _Cells, max_search_cells: int) -> np.ndarray:
    """Each group's knee as ``log10(x0 / x_ref)``: a half-decade grid, then golden section in the best bracket.

    The search runs on at most ``max_search_cells`` cells (a seeded subset: the knee
    is a smooth function of thousands of cells); the final fit uses every cell.
    """
    search: slice | np.ndarray = slice(None)
    if len(cells.g) > max_search_cells:
        search = np.sort(np.random.default_rng(0).choice(len(cells.g), max_search_cells, replace=False))
    n_groups = cells.n_groups
    objs = np.array([cells.evaluate(np.full(n_groups, gv), search)[0] for gv in _GRID])
    best = objs.argmin(axis=0)
    left, right = _GRID[np.maximum(best - 1, 0)], _GRID[np.minimum(best + 1, len(_GRID) - 1)]
    inv = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = right - inv * (right - left), left + inv * (right - left)
    fc, fd = cells.evaluate(c, search)[0], cells.evaluate(d, search)[0]
    for _ in range(_GOLDEN_STEPS):
        go_left = fc < fd
        right, left = np.where(go_left, d, right), np.where(go_left, left, c)
        new_c, new_d = right - inv * (right - left), left + inv * (right - left)
        f_new = cells.evaluate(np.where(go_left, new_c, new_d), search)[0]
        c, fc, d, fd = (np.where(go_left, new_c, d), np.where(go_left, f_new, fd),
                        np.where(go_left, c, new_d), np.where(go_left, fc, f_new))
    return np.where(cells.size_fit, (left + right) / 2.0, 0.0)


def fit_law(g: np.ndarray, n_groups: int, t: np.ndarray, x: np.ndarray, cpus: np.ndarray, *,
            fit_exponent: bool, p: dict[str, Any]) -> LawFit:
    """Fit ``T = (c0 + c1 x) cpus^-a R`` for every group at once (see the module docstring)."""
    logt = np.log(np.maximum(t, p["min_time_s"]))
    L = np.log(cpus)
    cells = _cells(g, n_groups, logt, x, L, fit_exponent=fit_exponent, p=p)
    size_fit, exp_fit, N = cells.size_fit, cells.exp_fit, cells.N
    gexp = _knee_exponents(cells, p["max_search_cells"])
    obj, a_hat = cells.evaluate(gexp)
    x0 = np.where(size_fit, cells.x_ref * 10.0 ** gexp, np.inf)

    # residual spread -> sigma (dof-corrected, shrunk towards the prior)
    n_par = 1 + exp_fit.astype(int) + size_fit.astype(int)
    dof = np.maximum(N - n_par, 0.0)
    s2_hat = np.divide(obj * N, dof, out=np.zeros(n_groups), where=dof > 0)
    k0 = p["prior_weight"]
    sigma = np.sqrt((dof * s2_hat + k0 * p["prior_sigma"] ** 2) / (dof + k0))
    # a weak normal prior on the exponent
    if fit_exponent:
        lo, hi = cells.bounds
        prec = N * cells.VL / np.maximum(sigma * sigma, 1e-12)
        prior_prec = 1.0 / p["exponent_prior_sd"] ** 2
        a_post = (a_hat * prec + p["prior_exponent"] * prior_prec) / (prec + prior_prec)
        a = np.where(exp_fit, np.clip(a_post, lo, hi), cells.a_prior)
    else:
        a = np.zeros(n_groups)
    c0, c1, ratios, noise = _scale_and_noise(g, n_groups, logt, x, L, a, x0, size_fit, N, dof, sigma, p)
    return LawFit(a=a, a_fitted=exp_fit, c0=c0, c1=c1, sigma=sigma, samples=N.astype(np.int64),
                  cpus_min=cells.cpus_min, cpus_max=cells.cpus_max, n_cpus=cells.n_cpus, n_sizes=cells.n_sizes,
                  ratios=ratios, noise=noise)


def _scale_and_noise(g: np.ndarray, n_groups: int, logt: np.ndarray, x: np.ndarray, L: np.ndarray, a: np.ndarray,
                     x0: np.ndarray, size_fit: np.ndarray, N: np.ndarray, dof: np.ndarray, sigma: np.ndarray,
                     p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[str]]:
    """Row residuals -> the scale (mean-one noise: ``c0``, ``c1``) and each group's noise distribution."""
    safeN = np.maximum(N, 1.0)
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
            ratios.append(compress_ratios(e[order[bounds[k]:bounds[k + 1]]], p["max_ratio_samples"]))
            noise.append("empirical")
        else:
            ratios.append(lognormal_ratios(float(sigma[k])))
            noise.append("lognormal")
    return c0, c1, ratios, noise


def fit_linear_nonneg(g: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass
class Transfer:
    """One direction's transfer time: ``(latency_s + bytes * s_per_byte) * R`` with mean-one ``ratios`` R."""

    latency_s: float
    s_per_byte: float
    ratios: np.ndarray
    samples: int = 0
    source: str = "prior"


def fit_transfers(h: pd.DataFrame, p: dict[str, Any]) -> dict[str, Transfer]:
    """The transfer law of each direction that moved bytes in ``h`` (download: inputs, upload: outputs)."""
    out: dict[str, Transfer] = {}
    for direction, bcol, tcol in (("download", "input_bytes", "download_s"), ("upload", "output_bytes", "upload_s")):
        rows = h[h[bcol] > 0]
        if rows.empty:
            continue
        x, t = rows[bcol].to_numpy(float), rows[tcol].to_numpy(float)
        g = np.zeros(len(rows), np.int64)
        fit = fit_law(g, 1, t, x, np.ones(len(rows)), fit_exponent=False, p=p)
        lat, spb = float(fit.c0[0]), float(fit.c1[0])
        if fit.n_sizes[0] < 2:
            # one size cannot split latency from bandwidth: keep the prior latency (at most half the time)
            lat = min(p["latency_s"], 0.5 * float(t.mean()))
            spb = max(float(t.mean()) - lat, 0.0) / float(x.mean())
        out[direction] = Transfer(lat, spb, fit.ratios[0], int(fit.samples[0]), "history")
    return out


def fit_startups(h: pd.DataFrame, p: dict[str, Any]
                 ) -> tuple[dict[tuple[str, bool], TimeDistribution], dict[bool, TimeDistribution]]:
    """Start-up times: per (profile, cold) with at least ``min_startup_samples`` rows, and pooled per cold/warm."""
    per_profile: dict[tuple[str, bool], TimeDistribution] = {}
    for (profile, cold), times in h.groupby(["profile", "cold_start"], sort=True)["startup_s"]:
        if len(times) >= p["min_startup_samples"]:
            per_profile[(str(profile), bool(cold))] = _empirical(times.to_numpy(float), "history", p)
    pooled = {bool(cold): _empirical(times.to_numpy(float), "extrapolated", p)
              for cold, times in h.groupby("cold_start")["startup_s"]}
    return per_profile, pooled


def _empirical(times: np.ndarray, source: str, p: dict[str, Any]) -> TimeDistribution:
    mean = float(times.mean())
    if mean <= 0:
        return TimeDistribution(0.0, np.ones(1), len(times), source)
    return TimeDistribution(mean, compress_ratios(times / mean, p["max_ratio_samples"]), len(times), source)
