"""The cross-application prior: workflow-system overheads learned from many real executions, shipped with planlab.

One or two executions of a new application cannot pin down four overhead terms, but
workflow systems have characteristic overheads whatever they run (FACTS.md: Pegasus
dispatches about one task a second and takes minutes to start; Makeflow dispatches
every 5-20 s).  So :func:`experiments.calibration.calibrate` starts from a prior - the terms fitted
on *all* the public executions of the same workflow system, pooled over applications -
and pulls toward it, and one of its candidate models is that prior scaled by a single
factor, which one execution determines.

``prior.json`` (next to this module) holds one platform per workflow
system; regenerate it with ``python -m experiments.calibration.prior_corpus CORPUS_DIR``
(``benchmarks/data/wfinstances-corpus``).  Benchmarks that judge the prior must not let
it see the application they predict:
:func:`experiments.calibration.prior_corpus.learn_prior` on the *other* applications.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from planning.errors import ConfigError
from simulator.platform import Platform

PRIOR_FILE = Path(__file__).resolve().parent / "prior.json"
#: The terms a prior sets: the four workflow-system terms every system shows.  A machine's serial starter
#: (``machine_dispatch_s``) is not among them: it is seen only where a run used several machines, and the
#: fit starts it at 0.
PRIOR_TERMS = ("workflow_start_s", "dispatch_s", "level_delay_s", "staging_s_per_GB")


def shipped_priors() -> dict[str, dict[str, float]]:
    """Workflow system -> prior terms, as shipped (empty when the file is missing)."""
    if not PRIOR_FILE.exists():
        return {}
    data = json.loads(PRIOR_FILE.read_text())
    return {system: dict(entry["terms"]) for system, entry in data.get("systems", {}).items()}


def system_of(observations: Sequence[Any]) -> str:
    """The workflow system most of the observations ran on ("" when none says)."""
    counts = Counter(o.system for o in observations if o.system)
    return counts.most_common(1)[0][0] if counts else ""


def resolve_prior(prior: Any, observations: Sequence[Any], base: Platform) -> Platform | None:
    """``prior`` as a platform on top of ``base``: ``"default"`` (the shipped one for the observations'
    system, None if there is none), ``None``/``"none"``, a :class:`Platform`, or a mapping of terms."""
    if prior is None or (isinstance(prior, str) and prior.lower() == "none"):
        return None
    if isinstance(prior, Platform):
        return prior
    if isinstance(prior, Mapping):
        return base.with_(**dict(prior))
    if isinstance(prior, str) and prior == "default":
        terms = shipped_priors().get(system_of(observations))
        return base.with_(**terms) if terms else None
    if isinstance(prior, (str, Path)) and Path(prior).exists():
        return Platform.from_toml(prior)
    raise ConfigError(f"unknown calibration prior {prior!r}",
                      "give 'default', 'none', or a platform TOML file written by 'planlab calibrate --out'")
