"""The cost model: what a task costs on a profile, learnt from past runs.

Shape (scikit-learn's): ``CostModel().fit(history)`` then queries -
:meth:`CostModel.estimate` for one (kind, profile), :meth:`CostModel.estimate_workflow`
for a whole workflow on a whole catalog (vectorised), :meth:`CostModel.predict` for
a frame of rows, :meth:`CostModel.transfer_s` / :meth:`CostModel.transfer_distribution`,
:meth:`CostModel.startup_s` / :meth:`CostModel.startup_distribution`, and
:meth:`CostModel.validate` for held-out error; :meth:`CostModel.describe` and
:meth:`CostModel.to_dict` record what was fitted.

The law (per task kind ``k``, ``x`` input bytes, ``c`` CPUs)::

    T = base_k(c, x) * R_k,      base_k(c, x) = (c0_k + c1_k * x) * max(c, 1) ** -a_k * min(c, 1) ** -a_low_k,
    E[R_k] = 1

* **An intercept** ``c0``: a task with no input still costs something.
* **A fitted CPU exponent** ``a`` per kind, clamped to ``exponent_bounds`` (default
  [0, 1.5]: 0 = CPUs do not help, 1 = perfect scaling, a little above 1 for
  cache/memory effects).  A kind measured on a single CPU count cannot tell its
  exponent; :data:`PRIOR_EXPONENT` is used and estimates on other CPU counts are
  flagged ``"extrapolated"``.
* **Multiplicative noise** ``R``: the empirical ratios observed / base, mean-one.
  The value at an SLA is ``base * SLA.of(R)``: a percentile of *times*, never of
  speeds, so a higher percentile never predicts anything faster.
* **Fitting** is maximum likelihood under lognormal noise, for all kinds at once; few
  samples are shrunk towards the priors; transfers ``(latency + bytes / bandwidth) * R``
  per direction and start-ups (cold and warm, per profile or pooled) are fitted from
  the same history: :mod:`planning.costs.laws` says how.
* **Flags** (``source``) concern CPUs: ``"history"`` inside the measured CPU range of
  a kind whose exponent was fitted (or on its one measured CPU count),
  ``"extrapolated"`` outside it.  Input sizes beyond the measured ones follow the
  fitted line unflagged: the line is the law, and sizes vary per task.
* **No history of a kind**: the task's hints (``runtime_s`` on ``cores`` CPUs, moved along
  the same bent law as a fitted kind: ``cpus ** -prior_exponent`` above one CPU, a quota's
  ``1 / cpus`` below it), else :data:`DEFAULT_EXEC_S` on 1 CPU; always flagged ``"prior"``
  with a lognormal of :data:`PRIOR_SIGMA`, never a silent zero.  So ``prior_exponent=0``
  says "single-threaded: nothing gained above one CPU" and still slows a 0.5-CPU quota x2.

Defaults, why each, and valid ranges: :mod:`planning.costs.parameters`.

The law bends at one CPU (:mod:`planning.costs.quota`): ``cpus^-a`` above it, a
quota's ``cpus^-a_low`` below it (a per kind, a_low measured from the kind's times
below and at one CPU, else 1: a quota throttles CPU work in proportion).

Known limits: one noise shape per kind (shared by its profiles and sizes); transfers
are per direction, not per profile.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from planning.costs.estimates import SOURCES, Estimate, TimeDistribution, WorkflowEstimates
from planning.costs.history import validate_history
from planning.costs.laws import (LawFit, Transfer, fit_law, fit_linear_nonneg, fit_startups, fit_transfers,
                                lognormal_ratios)
from planning.costs import summary
from planning.costs.parameters import (DEFAULT_BANDWIDTH_BPS, DEFAULT_COLD_START_S,  # noqa: F401 - re-exported
                                       DEFAULT_EXEC_S, DEFAULT_LATENCY_S, DEFAULT_OUTPUT_BYTES, DEFAULT_WARM_START_S,
                                       PRIOR_EXPONENT, PRIOR_SIGMA, checked_params)
from planning.costs.validation import held_out_errors
from planning.costs.quota import (DEFAULT_LOW_EXPONENT, low_cpu_exponents, quota_factor, to_one_cpu,
                                  with_measured_range)
from planning.costs.threads import threaded_kinds
from planning.errors import CatalogError, PlanlabError
from planning.profiles import Catalog, ResourceProfile, load_catalog
from planning.sla import SLA
from planning.workflow import Workflow

#: Name of the shared prior noise entry in :attr:`WorkflowEstimates.ratios`.
PRIOR_KIND = "(prior)"
DIRECTIONS = ("download", "upload")

_HISTORY, _EXTRAPOLATED, _PRIOR = 0, 1, 2
_CPU_RTOL = 1e-3           # CPU counts closer than this count as the same (Lambda's are rounded)


# ====================================================================== the model
class CostModel:
    """Execution, output, transfer and start-up estimates at a chosen SLA statistic.

    Unfitted, every answer is a documented prior (flagged), so a planner works with
    no history at all.  Parameters are the priors and fitting knobs described in the
    module docstring; their defaults and ranges are :mod:`planning.costs.parameters`.
    """

    def __init__(self, *, prior_exponent: float = PRIOR_EXPONENT, prior_sigma: float = PRIOR_SIGMA,
                 default_exec_s: float = DEFAULT_EXEC_S, default_output_bytes: float = DEFAULT_OUTPUT_BYTES,
                 latency_s: float = DEFAULT_LATENCY_S, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
                 cold_start_s: float = DEFAULT_COLD_START_S, warm_start_s: float = DEFAULT_WARM_START_S,
                 exponent_bounds: tuple[float, float] = (0.0, 1.5), exponent_prior_sd: float = 0.5,
                 prior_weight: float = 5.0, min_empirical_samples: int = 50, min_startup_samples: int = 5,
                 max_ratio_samples: int = 2048, max_search_cells: int = 100_000, min_time_s: float = 1e-6) -> None:
        self.prior_exponent = prior_exponent
        self.prior_sigma = prior_sigma
        self.default_exec_s = default_exec_s
        self.default_output_bytes = default_output_bytes
        self.latency_s = latency_s
        self.bandwidth_Bps = bandwidth_Bps
        self.cold_start_s = cold_start_s
        self.warm_start_s = warm_start_s
        self.exponent_bounds = exponent_bounds
        self.exponent_prior_sd = exponent_prior_sd
        self.prior_weight = prior_weight
        self.min_empirical_samples = min_empirical_samples
        self.min_startup_samples = min_startup_samples
        self.max_ratio_samples = max_ratio_samples
        self.max_search_cells = max_search_cells
        self.min_time_s = min_time_s
        self._reset()   # an unfitted model answers with its priors: a planner works with no history at all

    @property
    def params(self) -> dict[str, Any]:
        """The constructor's parameters, checked and as plain numbers (what :meth:`to_dict` records).

        Raises :class:`~planning.errors.PlanlabError` naming the first parameter out of its range.
        """
        return checked_params(self)

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters as given (scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters
                if name != "self"}

    def _reset(self) -> None:
        """All priors, from the parameters as they are now: the state of an unfitted model."""
        self._p = self.params
        self.fitted_ = False
        self.prior_ratios_ = lognormal_ratios(self._p["prior_sigma"])
        self._set_kinds([], None, np.zeros(0), np.zeros(0))
        prior_transfer = Transfer(self._p["latency_s"], 1.0 / self._p["bandwidth_Bps"], self.prior_ratios_)
        self.transfers_: dict[str, Transfer] = {d: prior_transfer for d in DIRECTIONS}
        self.startup_: dict[tuple[str, bool], TimeDistribution] = {}
        self.startup_pooled_: dict[bool, TimeDistribution] = {
            cold: TimeDistribution(self._p["cold_start_s" if cold else "warm_start_s"], self.prior_ratios_, 0, "prior")
            for cold in (True, False)}
        self.threaded_kinds_: frozenset[str] = frozenset()
        self._sla_cache: dict[SLA, np.ndarray] = {}

    def __repr__(self) -> str:
        state = f"{len(self.kinds_)} kinds" if self.fitted_ else "unfitted (priors only)"
        return f"CostModel({state})"

    # ------------------------------------------------------------------ fitting
    def threaded(self, kinds: Sequence[str]) -> np.ndarray:
        """Per kind: whether its tasks keep their whole CPU quota busy (:mod:`planning.costs.threads`).

        False for kinds without history: one thread is what most tasks, and every replay, run.
        """
        if not self.threaded_kinds_:      # (the priors', and most models': no pass over the kinds)
            return np.zeros(len(kinds), bool)
        return np.fromiter(map(self.threaded_kinds_.__contains__, kinds), bool, len(kinds))   # (map: no frame per kind)

    @property
    def fitted(self) -> bool:
        return self.fitted_

    @property
    def kinds(self) -> list[str]:
        """Kinds that have history (fitted laws)."""
        return list(self.kinds_)

    def fit(self, history: pd.DataFrame) -> "CostModel":
        """Fit every law from a history (validated with :func:`validate_history`); returns self."""
        return self.fit_validated(validate_history(history))

    def fit_validated(self, h: pd.DataFrame) -> "CostModel":
        """:meth:`fit` on a history :func:`validate_history` already returned (cross-validation's folds); returns self."""
        self._reset()
        p = self._p
        codes, names = pd.factorize(h["kind"], sort=True)
        codes = codes.astype(np.int64)
        x, cpus, t = h["input_bytes"].to_numpy(float), h["cpus"].to_numpy(float), h["exec_s"].to_numpy(float)
        # the knee at one CPU (planning.costs.quota): fit the law above it on one-CPU equivalents
        low = low_cpu_exponents(codes, len(names), t, cpus)
        t1, c1 = to_one_cpu(codes, t, cpus, low)
        law = with_measured_range(fit_law(codes, len(names), t1, x, c1, fit_exponent=True, p=p), codes, cpus) \
            if len(names) else None
        out0, out1 = fit_linear_nonneg(codes, len(names), x, h["output_bytes"].to_numpy(float))
        self._set_kinds([str(k) for k in names], law, out0, out1, low)
        self.transfers_.update(fit_transfers(h, p))
        self.startup_, pooled = fit_startups(h, p)
        self.startup_pooled_.update(pooled)
        self.threaded_kinds_ = threaded_kinds(h)
        self.fitted_ = True
        self._sla_cache.clear()
        return self

    def _set_kinds(self, names: list[str], law: LawFit | None, out0: np.ndarray, out1: np.ndarray,
                   low: np.ndarray | None = None) -> None:
        """Store per-kind arrays with one extra slot (index ``len(names)``) for priors."""
        p = self._p
        K = len(names)
        self.kinds_ = names
        self.kind_index_ = {k: i for i, k in enumerate(names)}

        def ext(values: np.ndarray | None, prior: float, dtype: Any = float) -> np.ndarray:
            values = np.zeros(0, dtype) if values is None else np.asarray(values, dtype)
            return np.concatenate([values, np.array([prior], dtype)])

        self.law_ = law
        self.exponent_ = ext(law.a if law else None, p["prior_exponent"])
        #: below one CPU (planning.costs.quota): min(cpus, 1)^-exponent_low_
        self.exponent_low_ = ext(low if law else None, DEFAULT_LOW_EXPONENT)
        self.exponent_fitted_ = ext(law.a_fitted if law else None, False, bool)
        self.c0_ = ext(law.c0 if law else None, p["default_exec_s"])
        self.c1_ = ext(law.c1 if law else None, 0.0)
        self.samples_ = ext(law.samples if law else None, 0, np.int64)
        self.cpus_min_ = ext(law.cpus_min if law else None, np.nan)
        self.cpus_max_ = ext(law.cpus_max if law else None, np.nan)
        self.out0_ = ext(out0 if K else None, p["default_output_bytes"])
        self.out1_ = ext(out1 if K else None, 0.0)
        self.ratios_ = (list(law.ratios) if law else []) + [self.prior_ratios_]

    # ------------------------------------------------------------------ the vectorised core
    def _kind_codes(self, kinds: Sequence[str] | np.ndarray) -> np.ndarray:
        """Index of each kind; ``len(kinds)`` (the prior slot) for kinds without history."""
        K = len(self.kinds_)
        if K == 0:
            return np.zeros(len(kinds), np.int64)
        if len(kinds) <= 20_000:   # a dict lookup per task beats building a pandas Index for small inputs
            pos = self.kind_index_
            return np.fromiter((pos.get(k, K) for k in kinds), np.int64, len(kinds))
        idx = pd.Index(self.kinds_).get_indexer(pd.Index(np.asarray(kinds, dtype=object)))
        return np.where(idx < 0, K, idx).astype(np.int64)

    def _exec_base(self, kidx: np.ndarray, x: np.ndarray, cpus: np.ndarray, hint_rt: np.ndarray,
                   hint_cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean seconds and source code; all arguments broadcast elementwise (rows or a matrix)."""
        p = self._p
        known = kidx < len(self.kinds_)
        law = (self.c0_[kidx] + self.c1_[kidx] * x) * np.maximum(cpus, 1.0) ** -self.exponent_[kidx] \
            * quota_factor(cpus, self.exponent_low_[kidx])
        rt = np.where(np.isnan(hint_rt), p["default_exec_s"], hint_rt)
        rc = np.where(np.isnan(hint_cores) | (hint_cores <= 0), 1.0, hint_cores)
        prior = rt * (np.maximum(cpus, 1.0) / np.maximum(rc, 1.0)) ** -p["prior_exponent"] \
            * quota_factor(cpus, DEFAULT_LOW_EXPONENT) / quota_factor(rc, DEFAULT_LOW_EXPONENT)
        base = np.maximum(np.where(known, law, prior), p["min_time_s"])
        lo, hi = self.cpus_min_[kidx], self.cpus_max_[kidx]
        inside = (cpus >= lo * (1 - _CPU_RTOL)) & (cpus <= hi * (1 + _CPU_RTOL))
        src = np.where(known, np.where(inside, _HISTORY, _EXTRAPOLATED), _PRIOR).astype(np.int8)
        return base, src

    def _output(self, kidx: np.ndarray, x: np.ndarray, hint_out: np.ndarray) -> np.ndarray:
        known = kidx < len(self.kinds_)
        law = np.maximum(self.out0_[kidx] + self.out1_[kidx] * x, 0.0)
        prior = np.where(np.isnan(hint_out), self._p["default_output_bytes"], hint_out)
        return np.where(known, law, prior)

    def ratio_at(self, sla: "SLA | str") -> np.ndarray:
        """``SLA.of(R)`` of every kind (last entry: the prior), cached per SLA."""
        sla = SLA.parse(sla)
        if sla not in self._sla_cache:
            self._sla_cache[sla] = np.array([float(sla.of(r)) for r in self.ratios_])
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
        samples, source = int(self.samples_[k]), SOURCES[int(src[0])]
        dist = TimeDistribution(float(base[0]), self.ratios_[k], samples, source)
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
                             "samples": self.samples_[kidx], "source": np.asarray(SOURCES, dtype=object)[src]},
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
            output_bytes=self._output(kidx, x, topo.output_hint_bytes), samples=self.samples_[kidx].copy(),
            source=src_names[src.max(axis=1)], kind_index=kidx, ratios=list(self.ratios_), ratio_at_sla=ratio.copy(),
            source_by_profile=src_names[src], input_bytes=x, kinds=self.kinds_ + [PRIOR_KIND])

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

    def _transfer(self, direction: str) -> Transfer:
        try:
            return self.transfers_[direction]
        except KeyError:
            raise PlanlabError(f"unknown transfer direction {direction!r}", "use 'download' or 'upload'") from None

    def startup_distribution(self, profile: "ResourceProfile | str", cold: bool) -> TimeDistribution:
        """Worker start-up seconds: this profile's history, else all profiles' (``"extrapolated"``), else the prior."""
        name = profile.name if isinstance(profile, ResourceProfile) else str(profile)
        return self.startup_.get((name, bool(cold)), self.startup_pooled_[bool(cold)])

    def startup_s(self, profile: "ResourceProfile | str", cold: bool, sla: "SLA | str") -> float:
        """Worker start-up seconds at ``sla`` (cold: a new worker; warm: a live one takes the task)."""
        return self.startup_distribution(profile, cold).at(sla)

    # ------------------------------------------------------------------ validation
    def validate(self, history: pd.DataFrame, folds: int = 5, statistics: Sequence[str] = ("mean", "p95"),
                 seed: int = 0, min_group: int = 5) -> pd.DataFrame:
        """k-fold held-out error of execution estimates, per kind and statistic, by models of these parameters.

        See :func:`planning.costs.validation.held_out_errors` (columns ``kind``,
        ``statistic``, ``mape``, ``samples``, ``groups``, ``floor``: ``mape`` close to
        ``floor`` means the model is as good as these data can show).
        """
        return held_out_errors(type(self), self.params, history, folds=folds, statistics=statistics, seed=seed,
                               min_group=min_group)

    # ------------------------------------------------------------------ provenance
    def describe(self) -> pd.DataFrame:
        """What was fitted per kind: one row each (empty when unfitted); see :func:`planning.costs.summary.describe`."""
        return summary.describe(self)

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted values as plain JSON-able data, for provenance."""
        return summary.to_dict(self)


# ====================================================================== helpers
def _check_bytes(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PlanlabError(f"{name} must be a number of bytes, got {value!r}", f"pass {name} >= 0") from None
    if not math.isfinite(v) or v < 0:
        raise PlanlabError(f"{name} must be a finite number of bytes >= 0, got {value!r}", f"pass {name} >= 0")
    return v


def validate_cost_model(history: pd.DataFrame, folds: int = 5, statistics: Sequence[str] = ("mean", "p95"),
                        seed: int = 0, **params: Any) -> pd.DataFrame:
    """:meth:`CostModel.validate` with a fresh model of the given parameters."""
    return CostModel(**params).validate(history, folds=folds, statistics=statistics, seed=seed)
