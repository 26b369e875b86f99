"""The SLA statistic: which summary of a duration distribution a plan targets.

Researchers pick it per experiment: ``mean`` (or ``avg``), ``median`` (``p50``),
or any percentile ``pNN`` / ``pNN.N`` such as ``p95`` or ``p99.9``.  A percentile
is always applied to *times*, never to speeds, so a higher percentile never
predicts anything faster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from planning.errors import SLAError
from planning.names import did_you_mean

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$", re.ASCII)  # ASCII digits only: "p٩٥" is not p95


@dataclass(frozen=True, order=True)
class SLA:
    """A statistic of a distribution: ``kind`` is ``"mean"`` or ``"quantile"``.

    ``q`` is the quantile in [0, 1] for ``kind == "quantile"`` (0.5 for the median)
    and ``None`` for the mean.
    """

    kind: str
    q: float | None = None

    @classmethod
    def parse(cls, text: "str | SLA") -> "SLA":
        """Parse ``mean``/``avg``, ``median``, ``pNN`` (``p50`` ... ``p99.9``)."""
        if isinstance(text, SLA):
            return text
        if not isinstance(text, str):
            raise SLAError(f"SLA must be a string, got {type(text).__name__} {text!r}",
                           "use 'mean', 'median' or a percentile such as 'p95'")
        t = text.strip().lower()
        if t in ("mean", "avg", "average"):
            return cls("mean")
        if t == "median":
            return cls("quantile", 0.5)
        m = _PERCENTILE.match(t)
        if m:
            value = float(m.group(1))
            if 0 < value <= 100:
                return cls("quantile", value / 100.0)
        raise SLAError(f"unknown SLA statistic {text!r}{did_you_mean(t, ('mean', 'median', 'avg', 'p50', 'p90', 'p95', 'p99'))}",
                       "use 'mean', 'avg', 'median' or a percentile 'p1'...'p99.9'")

    @property
    def name(self) -> str:
        """Canonical text: ``mean`` or ``pNN`` (median is ``p50``)."""
        if self.kind == "mean":
            return "mean"
        pct = self.q * 100.0
        return f"p{pct:g}"

    def __str__(self) -> str:
        return self.name

    def of(self, samples: np.ndarray, axis: int | None = None) -> np.ndarray | float:
        """Apply the statistic to samples (along ``axis``)."""
        samples = np.asarray(samples, dtype=float)
        if self.kind == "mean":
            return samples.mean(axis=axis)
        return np.quantile(samples, self.q, axis=axis)
