"""What the OS permits: which CPU and memory limits this process may enforce, and why not better.

Found by trying (mkdir + rmdir a probe cgroup under this process's own cgroups):
cgroup v1 where its controllers are mounted, then cgroup v2 with delegated
controllers, then CPU affinity for CPU.  Memory has no fallback: ``RLIMIT_AS``
limits virtual address space, which numpy, BLAS thread stacks and glibc arenas
reserve far beyond what they touch, so it kills healthy tasks and spares none
that matter.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from executor.limits.cgroup_dirs import PREFIX, read_value

__all__ = ["CpuMode", "LimitSupport", "MemoryMode", "own_cgroup_dirs", "probe_limits"]

CpuMode = Literal["cgroup-v1", "cgroup-v2", "affinity", "none"]
MemoryMode = Literal["cgroup-v1", "cgroup-v2", "none"]


@dataclass(frozen=True)
class LimitSupport:
    """How CPU and memory limits can be enforced here, and why not better.

    ``cpu_parent`` / ``memory_parent`` are the directories new cgroups are
    created in (this process's own cgroups); for cgroup v2 they are the same.
    """

    cpu: CpuMode
    memory: MemoryMode
    cpu_reason: str
    memory_reason: str
    cpu_parent: Path | None = None
    memory_parent: Path | None = None

    def describe(self) -> str:
        """One line for logs and experiment provenance."""
        return f"cpu: {self.cpu} ({self.cpu_reason}); memory: {self.memory} ({self.memory_reason})"


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount root, mount point, fs type, super options) of every cgroup mount."""
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            root = fields[3]
            point = fields[4].replace("\\040", " ")
            out.append((root, point, rfields[0], set(rfields[2].split(","))))
    return out


def _own_cgroups() -> dict[str, str]:
    """Controller (or ``""`` for the v2 unified hierarchy) -> this process's cgroup path."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) != 3:
                continue
            _, controllers, path = parts
            if controllers == "":
                own[""] = path
            for c in controllers.split(","):
                if c:
                    own[c] = path
    return own


def _join(point: str, mount_root: str, path: str) -> Path:
    """Directory of cgroup ``path`` inside a mount whose root is ``mount_root`` (containers)."""
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
        path = path[len(mount_root) :]
    return Path(point) / path.lstrip("/")


def own_cgroup_dirs() -> dict[str, Path]:
    """The directories of the cgroups this process is in now: ``"cpu"`` and ``"memory"`` (v2: one directory).

    What a process reads to see its own limits from inside (a task checking the
    quota it runs under); a controller that is not mounted is absent.
    """
    own = _own_cgroups()
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for root, point, fstype, opts in _mounts():
        if fstype == "cgroup2" and "" in own:
            v2 = _join(point, root, own[""])
        elif fstype == "cgroup":
            v1.update({c: _join(point, root, own[c]) for c in ("cpu", "memory") if c in opts and c in own})
    # v1 wins on a hybrid system, as in probe_limits
    return {c: d for c in ("cpu", "memory") if (d := v1.get(c, v2)) is not None}


def _try_mkdir(parent: Path, needed: tuple[str, ...]) -> str | None:
    """Create and remove a probe cgroup under ``parent``; ``None`` if it works, else why not."""
    if not parent.is_dir():
        return f"{parent} does not exist"
    probe = parent / f"{PREFIX}{os.getpid()}-probe-{secrets.token_hex(3)}"
    try:
        probe.mkdir()
    except OSError as exc:
        return f"cannot create a cgroup in {parent}: {exc.strerror}"
    try:
        missing = [n for n in needed if not (probe / n).exists()]
        if missing:
            return f"{', '.join(missing)} missing in {parent}"
        for n in needed:
            if not os.access(probe / n, os.W_OK):
                return f"{probe / n} is not writable"
        return None
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def _probe_v1(controller: str, files: tuple[str, ...]) -> tuple[Path | None, str]:
    own = _own_cgroups()
    if controller not in own:
        return None, f"no cgroup v1 {controller} controller in /proc/self/cgroup"
    for root, point, fstype, opts in _mounts():
        if fstype == "cgroup" and controller in opts:
            parent = _join(point, root, own[controller])
            problem = _try_mkdir(parent, files)
            if problem is None:
                return parent, f"cgroup v1 under {parent}"
            return None, problem
    return None, f"the cgroup v1 {controller} hierarchy is not mounted"


def _probe_v2() -> tuple[Path | None, set[str], str]:
    """The v2 parent directory, the controllers delegated to it, and a reason."""
    own = _own_cgroups()
    if "" not in own:
        return None, set(), "no cgroup v2 hierarchy in /proc/self/cgroup"
    for root, point, fstype, _ in _mounts():
        if fstype != "cgroup2":
            continue
        parent = _join(point, root, own[""])
        try:
            enabled = set(read_value(parent / "cgroup.subtree_control").split())
        except OSError as exc:
            return None, set(), f"cannot read {parent}/cgroup.subtree_control: {exc.strerror}"
        wanted = {"cpu", "memory"} & enabled
        if not wanted:
            return (
                None,
                set(),
                f"cgroup v2 controllers cpu/memory are not delegated to {parent} "
                "(run under `systemd-run --user --scope -p Delegate=yes` or as root in a delegated slice)",
            )
        needed = tuple(f for c, f in (("cpu", "cpu.max"), ("memory", "memory.max")) if c in wanted)
        problem = _try_mkdir(parent, needed)
        if problem is not None:
            return None, set(), problem
        return parent, wanted, f"cgroup v2 under {parent}"
    return None, set(), "cgroup v2 is not mounted"


def probe_limits() -> LimitSupport:
    """Find out which limits this process may enforce, by trying (mkdir + rmdir a probe cgroup).

    Prefers cgroup v1 where its controllers are mounted (v2 on a hybrid system
    usually has no controllers), then v2 with delegated controllers, then CPU
    affinity.  Costs about a millisecond; keep the result for a run.
    """
    cpu_parent, cpu_reason = _probe_v1("cpu", ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cgroup.procs"))
    mem_parent, mem_reason = _probe_v1("memory", ("memory.limit_in_bytes", "cgroup.procs"))
    cpu: CpuMode = "cgroup-v1" if cpu_parent else "none"
    memory: MemoryMode = "cgroup-v1" if mem_parent else "none"
    if cpu == "none" or memory == "none":
        v2_parent, v2_controllers, v2_reason = _probe_v2()
        if cpu == "none" and "cpu" in v2_controllers:
            cpu, cpu_parent, cpu_reason = "cgroup-v2", v2_parent, v2_reason
        elif cpu == "none":
            cpu_reason = f"{cpu_reason}; {v2_reason}"
        if memory == "none" and "memory" in v2_controllers:
            memory, mem_parent, mem_reason = "cgroup-v2", v2_parent, v2_reason
        elif memory == "none":
            mem_reason = f"{mem_reason}; {v2_reason}; RLIMIT_AS is not used (it kills numpy tasks that reserve address space)"
    if cpu == "none" and hasattr(os, "sched_setaffinity"):
        cpu = "affinity"
        cpu_reason = f"{cpu_reason}; pinning to whole CPUs instead (fractions not enforced)"
    return LimitSupport(cpu, memory, cpu_reason, mem_reason, cpu_parent, mem_parent)
