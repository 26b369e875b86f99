"""Learn the shipped cross-application prior (``prior.json``) from a corpus of real executions.

``python -m experiments.calibration.prior_corpus CORPUS_DIR`` (``benchmarks/data/wfinstances-corpus``)
fits the workflow-system terms on every execution of each system, pooled over
applications, and writes :data:`experiments.calibration.prior.PRIOR_FILE`; benchmarks
call :func:`learn_prior` on the applications they do not predict.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from experiments.calibration.executions import Observation
from experiments.calibration.fit import fit_platform
from experiments.calibration.prior import PRIOR_FILE, PRIOR_TERMS
from experiments.provenance import git_revision
from simulator.platform import Platform


def learn_prior(observations: Sequence[Any]) -> dict[str, dict[str, float]]:
    """System -> the four terms fitted on all its executions, pooled over applications (no prior, all terms)."""
    out = {}
    for system in sorted({o.system for o in observations if o.system}):
        members = [o for o in observations if o.system == system]
        fitted = fit_platform(members, Platform.zero(), PRIOR_TERMS, select=False, prior=None, families=False)
        out[system] = {t: float(getattr(fitted.platform, t)) for t in PRIOR_TERMS}
    return out


def main(argv: list[str] | None = None) -> int:
    """Learn the priors from a directory of executions and write :data:`PRIOR_FILE`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m experiments.calibration.prior_corpus CORPUS_DIR", file=sys.stderr)
        return 2
    files = sorted(Path(args[0]).glob("*.json*"))
    observations = [Observation.from_execution(f) for f in files]
    priors = learn_prior(observations)
    counts = Counter(o.system for o in observations)
    document = {"about": "cross-application prior of workflow-system overheads (experiments/calibration/prior_corpus.py)",
                "learned_from": f"{len(observations)} WfInstances executions in {Path(args[0]).name}",
                "git": git_revision()["revision"],
                "systems": {s: {"executions": counts[s], "terms": t} for s, t in priors.items()}}
    PRIOR_FILE.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
