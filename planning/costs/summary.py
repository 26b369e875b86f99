"""What a cost model says about itself: one row per fitted kind, and plain JSON for provenance.

Every results folder keeps the model it planned with (``cost_model.json``) and
``planlab model describe`` prints the per-kind table; both read a model's learned
attributes (``law_``, ``ratios_``, ``transfers_``...) here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel

COLUMNS = ["kind", "source", "a", "a_source", "c0", "c1", "sigma", "noise", "samples", "cpus_min", "cpus_max",
           "n_cpus", "n_sizes", "out0", "out1", "ratio_p50", "ratio_p95"]


def describe(model: "CostModel") -> pd.DataFrame:
    """What was fitted per kind: one row each (empty when unfitted)."""
    rows = []
    law = model.law_
    for i, kind in enumerate(model.kinds_):
        r = model.ratios_[i]
        rows.append({"kind": kind, "source": "history" if law.a_fitted[i] else "extrapolated",
                     "a": float(law.a[i]), "a_source": "fitted" if law.a_fitted[i] else "prior",
                     "c0": float(law.c0[i]), "c1": float(law.c1[i]), "sigma": float(law.sigma[i]),
                     "noise": law.noise[i], "samples": int(law.samples[i]), "cpus_min": float(law.cpus_min[i]),
                     "cpus_max": float(law.cpus_max[i]), "n_cpus": int(law.n_cpus[i]),
                     "n_sizes": int(law.n_sizes[i]), "out0": float(model.out0_[i]), "out1": float(model.out1_[i]),
                     "ratio_p50": float(np.quantile(r, 0.5)), "ratio_p95": float(np.quantile(r, 0.95))})
    return pd.DataFrame(rows, columns=COLUMNS)


def to_dict(model: "CostModel") -> dict[str, Any]:
    """Parameters and fitted values as plain JSON-able data, for provenance."""
    params = model.params
    params["exponent_bounds"] = list(params["exponent_bounds"])
    transfers = {d: {"latency_s": t.latency_s, "bandwidth_Bps": (1.0 / t.s_per_byte) if t.s_per_byte > 0 else None,
                     "samples": t.samples, "source": t.source, "ratio_p95": float(np.quantile(t.ratios, 0.95))}
                 for d, t in model.transfers_.items()}
    startup = [{"profile": name, "cold": cold, "mean_s": d.mean(), "p95_s": float(d.quantile(0.95)),
                "samples": d.samples, "source": d.source} for (name, cold), d in sorted(model.startup_.items())]
    startup += [{"profile": "*", "cold": cold, "mean_s": d.mean(), "p95_s": float(d.quantile(0.95)),
                 "samples": d.samples, "source": d.source} for cold, d in sorted(model.startup_pooled_.items())]
    return {"model": "planlab.CostModel/1", "fitted": model.fitted_, "params": params,
            "kinds": describe(model).to_dict(orient="records"), "transfers": transfers, "startup": startup,
            "threaded_kinds": sorted(model.threaded_kinds_)}
