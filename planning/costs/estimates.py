"""What the cost model answers: values at an SLA, the distributions behind them, and how sure they are.

Every answer is ``scale x R`` where ``scale`` is the *mean* time and ``R`` a set of
mean-one multiplicative noise samples (the ratios observed / fitted of past runs,
or a lognormal grid for priors).  Why this shape:

* an SLA value is ``scale * SLA.of(R)``: a percentile of *times*, so a higher
  percentile can never predict anything faster (monotone by construction, for
  every task and profile, priors included);
* the simulator can sample the very distribution the planner planned against;
* the same ``R`` of a kind serves every profile and input size, so a
  10k-task x 8-profile table is one matrix of means times one factor per kind.

``source`` says where an answer comes from: ``"history"`` (fitted from runs of
this kind, on CPUs inside the measured range), ``"extrapolated"`` (fitted, but the
CPU count lies outside what was measured, or the kind was measured on a single
CPU count so the prior exponent carried it over) and ``"prior"`` (no history of
the kind: the task's hints or the model's documented defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from planning.sla import SLA

#: Sources from most to least certain; index = rank.
SOURCES: tuple[str, ...] = ("history", "extrapolated", "prior")


@dataclass(frozen=True, eq=False)
class TimeDistribution:
    """``scale * R`` with ``R`` drawn uniformly from ``ratios`` (mean one).

    ``samples`` and ``source`` tell what it rests on (history rows of the kind,
    or 0 and ``"prior"``).
    """

    scale: float
    ratios: np.ndarray
    samples: int = 0
    source: str = "prior"

    def __repr__(self) -> str:
        return (f"TimeDistribution(scale={self.scale:.6g}, points={len(self.ratios)}, samples={self.samples}, "
                f"source={self.source!r})")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...] | None = None) -> np.ndarray:
        """Seconds drawn i.i.d. from the distribution (``size`` as in numpy)."""
        idx = rng.integers(0, len(self.ratios), size=size)
        return self.scale * self.ratios[idx]

    def quantile(self, q: float | np.ndarray) -> float | np.ndarray:
        return self.scale * np.quantile(self.ratios, q)

    def mean(self) -> float:
        return float(self.scale * self.ratios.mean())

    def at(self, sla: "SLA | str") -> float:
        """The value at an SLA statistic."""
        return float(self.scale * SLA.parse(sla).of(self.ratios))

    def scaled(self, factor: float) -> "TimeDistribution":
        return TimeDistribution(self.scale * factor, self.ratios, self.samples, self.source)

    def summary(self) -> dict[str, float]:
        """Mean and a few percentiles, for printing and JSON."""
        return {"mean": self.mean(), "p50": float(self.quantile(0.5)), "p95": float(self.quantile(0.95)),
                "p99": float(self.quantile(0.99))}


@dataclass(frozen=True, eq=False)
class Estimate:
    """The model's answer for one (kind, profile, input size) at one SLA."""

    exec_s: float
    output_bytes: float
    samples: int
    source: str
    distribution: TimeDistribution
    kind: str = ""
    profile: str = ""
    input_bytes: float = 0.0
    sla: SLA = field(default_factory=lambda: SLA("mean"))

    @property
    def base_exec_s(self) -> float:
        """The mean execution seconds (the distribution's scale)."""
        return float(self.distribution.scale)

    def to_dict(self) -> dict[str, Any]:
        dist = self.distribution.summary()
        return {"kind": self.kind, "profile": self.profile, "input_bytes": self.input_bytes, "sla": self.sla.name,
                "exec_s": self.exec_s, "output_bytes": self.output_bytes, "samples": self.samples,
                "source": self.source, "mean": dist["mean"], "p50": dist["p50"], "p95": dist["p95"],
                "p99": dist["p99"]}


@dataclass(frozen=True, eq=False)
class WorkflowEstimates:
    """Execution estimates of every task of a workflow on every profile of a catalog.

    Rows follow ``task_ids`` (the workflow's topological order), columns
    ``profiles`` (catalog order).  ``ratios[k]`` are the mean-one noise samples of
    kind ``k``; the last entry is the prior lognormal shared by every task without
    history.  ``exec_s == base_exec_s * ratio_at_sla[kind_index][:, None]`` and
    ``base_exec_s`` is the mean.  ``kinds[k]`` names ``ratios[k]`` (``"(prior)"`` last);
    ``input_bytes`` is what each task reads (the sum of its in-edges).  ``source`` per task is the least certain source
    over the catalog's profiles; ``source_by_profile`` has the detail.
    """

    task_ids: list[str]
    profiles: list[str]
    sla: SLA
    exec_s: np.ndarray
    base_exec_s: np.ndarray
    output_bytes: np.ndarray
    samples: np.ndarray
    source: np.ndarray
    kind_index: np.ndarray
    ratios: list[np.ndarray]
    ratio_at_sla: np.ndarray
    source_by_profile: np.ndarray
    input_bytes: np.ndarray
    kinds: list[str]

    # ------------------------------------------------------------ lookups
    @cached_property
    def _task_pos(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.task_ids)}

    @cached_property
    def _profile_pos(self) -> dict[str, int]:
        return {p: j for j, p in enumerate(self.profiles)}

    def column(self, profile_name: str) -> np.ndarray:
        """Seconds at the SLA of every task on one profile."""
        try:
            return self.exec_s[:, self._profile_pos[profile_name]]
        except KeyError:
            raise KeyError(f"unknown profile {profile_name!r}; profiles: {self.profiles}") from None

    def row(self, task_id: str) -> np.ndarray:
        """Seconds at the SLA of one task on every profile."""
        try:
            return self.exec_s[self._task_pos[task_id]]
        except KeyError:
            raise KeyError(f"unknown task {task_id!r}") from None

    # ------------------------------------------------------------ sampling
    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lengths = np.array([len(r) for r in self.ratios], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return np.concatenate(self.ratios), offsets, lengths

    def sample_exec(self, rng: np.random.Generator, profile_index: np.ndarray | int,
                    size: int | None = None) -> np.ndarray:
        """One execution time per task on its assigned profile: shape ``(n_tasks,)``,
        or ``(size, n_tasks)`` draws when ``size`` is given.

        One uniform per task picks a ratio of the task's kind, so a draw costs one
        RNG call for the whole workflow and is reproducible under a seed.
        """
        n = len(self.task_ids)
        pidx = np.broadcast_to(np.asarray(profile_index, dtype=np.int64), (n,))
        flat, offsets, lengths = self._flat
        shape = (n,) if size is None else (size, n)
        u = rng.random(shape)
        pick = offsets[self.kind_index] + np.minimum((u * lengths[self.kind_index]).astype(np.int64),
                                                     lengths[self.kind_index] - 1)
        return self.base_exec_s[np.arange(n), pidx] * flat[pick]

    def to_frame(self) -> "Any":
        """A tidy DataFrame: one row per (task, profile)."""
        import pandas as pd

        n, m = self.exec_s.shape
        return pd.DataFrame({
            "task_id": np.repeat(np.asarray(self.task_ids, dtype=object), m),
            "profile": np.tile(np.asarray(self.profiles, dtype=object), n),
            "exec_s": self.exec_s.ravel(), "base_exec_s": self.base_exec_s.ravel(),
            "source": self.source_by_profile.ravel(), "samples": np.repeat(self.samples, m),
            "output_bytes": np.repeat(self.output_bytes, m), "sla": self.sla.name,
        })
