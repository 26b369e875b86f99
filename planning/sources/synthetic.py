"""Synthetic histories drawn from known laws, with the laws returned as ground truth.

Why: a cost model can only be judged against a truth it did not see.  Real
histories have none, so tests, benchmarks and experiments generate histories from
the same family of laws the :class:`~planning.costs.cost_model.CostModel` assumes and
compare its answers with :class:`SyntheticTruth`:

* execution seconds of a kind on ``cpus`` CPUs with ``x`` input bytes::

      T = (c0 + c1 * x) * cpus ** -a * R,   R = exp(sigma * Z - sigma**2 / 2),  Z ~ N(0, 1)

  so ``E[T] = (c0 + c1 * x) * cpus ** -a`` and ``R`` is a mean-one lognormal;
* output bytes ``out0 + out1 * x`` with a small (``sigma = 0.05``) mean-one lognormal noise;
* downloads and uploads ``(latency + bytes / bandwidth) * R`` (no transfer, no time, when bytes are 0);
* worker start-up, cold or warm, ``mean * R`` where the cold mean shrinks mildly with
  CPUs (``cold_s * cpus ** -0.2``: a bigger worker imports its modules a little faster).

Everything is vectorised: a million rows take about 2.5 s, mostly to build the
string columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from planning.profiles import Catalog, ResourceProfile, load_catalog
from planning.sla import SLA

#: Input sizes (bytes) every kind is measured at by default: none, 100 kB ... 100 MB.
DEFAULT_INPUT_SIZES: tuple[float, ...] = (0.0, 1e5, 1e6, 1e7, 1e8)

#: Noise of output sizes (lognormal sigma): outputs are nearly deterministic.
OUTPUT_SIGMA = 0.05


def _lognormal_quantile(sigma: float | np.ndarray, q: float) -> np.ndarray | float:
    """Quantile ``q`` of the mean-one lognormal ``exp(sigma Z - sigma^2 / 2)``."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    return np.exp(sigma * norm.ppf(q) - 0.5 * np.square(sigma))


@dataclass(frozen=True)
class KindLaw:
    """The true law of one task kind (seconds at 1 CPU; ``c1`` is seconds per byte)."""

    name: str
    c0: float
    c1: float
    a: float
    sigma: float
    out0: float = 1024.0
    out1: float = 0.0

    def mean(self, cpus: float | np.ndarray, input_bytes: float | np.ndarray) -> np.ndarray | float:
        return (self.c0 + self.c1 * np.asarray(input_bytes, dtype=float)) * np.asarray(cpus, dtype=float) ** -self.a

    def quantile(self, cpus: float | np.ndarray, input_bytes: float | np.ndarray, q: float) -> np.ndarray | float:
        return self.mean(cpus, input_bytes) * _lognormal_quantile(self.sigma, q)

    def stat(self, cpus: float | np.ndarray, input_bytes: float | np.ndarray, sla: "SLA | str") -> np.ndarray | float:
        """The true value of an SLA statistic (``mean`` or a quantile)."""
        sla = SLA.parse(sla)
        if sla.kind == "mean":
            return self.mean(cpus, input_bytes)
        return self.quantile(cpus, input_bytes, sla.q)

    def output_mean(self, input_bytes: float | np.ndarray) -> np.ndarray | float:
        return self.out0 + self.out1 * np.asarray(input_bytes, dtype=float)


@dataclass(frozen=True)
class TransferLaw:
    """``(latency_s + bytes / bandwidth_Bps) * R`` with a mean-one lognormal ``R``."""

    latency_s: float = 5e-4
    bandwidth_Bps: float = 200e6
    sigma: float = 0.3

    def mean(self, nbytes: float | np.ndarray) -> np.ndarray | float:
        nbytes = np.asarray(nbytes, dtype=float)
        return np.where(nbytes > 0, self.latency_s + nbytes / self.bandwidth_Bps, 0.0)

    def stat(self, nbytes: float | np.ndarray, sla: "SLA | str") -> np.ndarray | float:
        sla = SLA.parse(sla)
        factor = 1.0 if sla.kind == "mean" else _lognormal_quantile(self.sigma, sla.q)
        return self.mean(nbytes) * factor


@dataclass(frozen=True)
class StartupLaw:
    """Cold start ``cold_s * cpus ** -0.2``, warm start ``warm_s``, both times a mean-one lognormal."""

    cold_s: float = 0.25
    warm_s: float = 0.002
    sigma: float = 0.3

    def mean(self, cpus: float | np.ndarray, cold: bool | np.ndarray) -> np.ndarray | float:
        cpus = np.asarray(cpus, dtype=float)
        return np.where(cold, self.cold_s * cpus ** -0.2, self.warm_s)

    def stat(self, cpus: float, cold: bool, sla: "SLA | str") -> float:
        sla = SLA.parse(sla)
        factor = 1.0 if sla.kind == "mean" else _lognormal_quantile(self.sigma, sla.q)
        return float(self.mean(cpus, cold) * factor)


@dataclass(frozen=True)
class SyntheticTruth:
    """The laws a synthetic history was drawn from: compare a fitted model with these."""

    kinds: tuple[KindLaw, ...]
    download: TransferLaw = field(default_factory=TransferLaw)
    upload: TransferLaw = field(default_factory=lambda: TransferLaw(latency_s=8e-4, bandwidth_Bps=150e6))
    startup: StartupLaw = field(default_factory=StartupLaw)

    @property
    def kind_names(self) -> list[str]:
        return [k.name for k in self.kinds]

    def kind(self, name: str) -> KindLaw:
        for k in self.kinds:
            if k.name == name:
                return k
        raise KeyError(f"no kind {name!r} in this truth; kinds: {self.kind_names}")


def random_truth(kinds: int | Sequence[str] = 5, seed: int = 0) -> SyntheticTruth:
    """Draw plausible laws: ``c0`` 0.05-2 s, size term at 10 MB 0.1-20x ``c0``,
    ``a`` 0.1-1.1, noise sigma 0.1-0.5, output 1-100 kB plus 0-100 % of the input."""
    names = [f"kind{i:02d}" for i in range(kinds)] if isinstance(kinds, int) else [str(k) for k in kinds]
    rng = np.random.default_rng([seed, 7919])
    laws = []
    for name in names:
        c0 = float(10 ** rng.uniform(np.log10(0.05), np.log10(2.0)))
        c1 = float(c0 * 10 ** rng.uniform(-1.0, np.log10(20.0)) / 1e7)
        laws.append(KindLaw(name=name, c0=c0, c1=c1, a=float(rng.uniform(0.1, 1.1)), sigma=float(rng.uniform(0.1, 0.5)),
                            out0=float(10 ** rng.uniform(3, 5)), out1=float(rng.uniform(0.0, 1.0))))
    return SyntheticTruth(kinds=tuple(laws))


def _profiles(profiles: "Catalog | str | Iterable[ResourceProfile]") -> list[ResourceProfile]:
    if isinstance(profiles, (str, Catalog)):
        return load_catalog(profiles).profiles
    return list(profiles)


def synthetic_history(kinds: int | Sequence[str] = 5,
                      profiles: "Catalog | str | Iterable[ResourceProfile]" = "lambda",
                      samples_per_cell: int = 20,
                      seed: int = 0,
                      truth: SyntheticTruth | None = None,
                      input_sizes: Sequence[float] = DEFAULT_INPUT_SIZES,
                      cold_fraction: float = 0.2) -> tuple[pd.DataFrame, SyntheticTruth]:
    """A history of ``kinds x profiles x input_sizes x samples_per_cell`` rows, and its truth.

    ``truth`` reuses given laws (then ``kinds`` is ignored), so one truth can be
    sampled at several sample counts and seeds; otherwise laws are drawn with
    :func:`random_truth` from ``seed``.  Rows are in random order, as a real
    history interleaves runs.  Noise is drawn from ``seed`` alone, so the same
    arguments give the same history.
    """
    if samples_per_cell < 1:
        raise ValueError("samples_per_cell must be >= 1")
    truth = truth if truth is not None else random_truth(kinds, seed)
    profs = _profiles(profiles)
    sizes = np.asarray(list(input_sizes), dtype=float)
    nk, npf, ns = len(truth.kinds), len(profs), len(sizes)
    n = nk * npf * ns * samples_per_cell
    rng = np.random.default_rng([seed, 104729])

    cell = np.repeat(np.arange(nk * npf * ns), samples_per_cell)
    cell = cell[rng.permutation(n)]
    k_idx, rest = np.divmod(cell, npf * ns)
    p_idx, s_idx = np.divmod(rest, ns)

    c0 = np.array([k.c0 for k in truth.kinds])[k_idx]
    c1 = np.array([k.c1 for k in truth.kinds])[k_idx]
    a = np.array([k.a for k in truth.kinds])[k_idx]
    sig = np.array([k.sigma for k in truth.kinds])[k_idx]
    out0 = np.array([k.out0 for k in truth.kinds])[k_idx]
    out1 = np.array([k.out1 for k in truth.kinds])[k_idx]
    cpus = np.array([p.cpus for p in profs], dtype=float)[p_idx]
    mem = np.array([p.memory_mb for p in profs], dtype=float)[p_idx]
    x = sizes[s_idx]

    def noise(sigma: np.ndarray | float) -> np.ndarray:
        return np.exp(sigma * rng.standard_normal(n) - 0.5 * np.square(sigma))

    exec_s = (c0 + c1 * x) * cpus ** -a * noise(sig)
    output = np.round((out0 + out1 * x) * noise(OUTPUT_SIGMA))
    download = truth.download.mean(x) * noise(truth.download.sigma)
    upload = truth.upload.mean(output) * noise(truth.upload.sigma)
    cold = rng.random(n) < cold_fraction
    startup = truth.startup.mean(cpus, cold) * noise(truth.startup.sigma)

    kind_names = np.array(truth.kind_names, dtype=object)
    prof_names = np.array([p.name for p in profs], dtype=object)
    columns = {"kind": kind_names[k_idx], "profile": prof_names[p_idx], "cpus": cpus, "memory_mb": mem,
               "input_bytes": x, "output_bytes": output, "download_s": download, "exec_s": exec_s,
               "upload_s": upload, "startup_s": startup, "cold_start": cold}
    return _as_history(seed, n, columns), truth


def _as_history(seed: int, n: int, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The history frame: ``columns`` behind synthetic run ids (one run per 1,000 rows) and task ids."""
    runs = max(1, n // 1000)
    return pd.DataFrame({
        "run_id": (f"synth-{seed}-" + pd.Series(np.arange(n) % runs).astype(str)).to_numpy(dtype=object),
        "workflow": "synthetic",
        "structure_hash": "synthetic",
        "task_id": ("t" + pd.Series(np.arange(n)).astype(str)).to_numpy(dtype=object),
        **columns,
    })
