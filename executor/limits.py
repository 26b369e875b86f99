"""Real CPU and memory limits for worker processes, where the OS permits them.

A ``ResourceProfile`` promises a worker a fraction of a CPU and a memory size.
For planned-vs-real comparisons to mean anything, the executor must *enforce*
that promise, or say plainly that it did not.  What this machine measured
(``FACTS.md``):

* **CPU** — a cgroup CPU quota is real: 0.5 CPU slows a single-threaded loop
  ×1.9–2.0.  The quota is ``cpus × period`` per period; with the kernel's
  default 100 ms period a task shorter than ~100 ms runs at full speed until
  the budget runs out, so short tasks would not be slowed at all.  We use a
  **10 ms period**.
* **Threads** — BLAS/OpenMP pools sized to the machine, not to the quota, spin
  and burn quota (×4.5 slower instead of ×4).  :func:`thread_env` sizes them to
  the quota.
* **Memory** — a memory cgroup limit is an immediate OOM kill: the process
  dies by **SIGKILL (exit status −9)** the moment it exceeds the limit (there
  is no swap to spill into).  The executor should report such a death as
  "exceeded its memory limit", not as a crash.  The memory cgroup must be
  created *under this process's own memory cgroup* (``/proc/self/cgroup``),
  not at the hierarchy root.
* **Fallbacks** — without cgroups, CPU is limited by pinning to whole CPUs
  (``sched_setaffinity``; a fraction is not enforceable that way).  Memory is
  then *not* enforced: ``RLIMIT_AS`` limits virtual address space, which numpy,
  BLAS thread stacks and glibc arenas reserve far beyond what they touch, so it
  kills healthy tasks and spares none that matter.

Every cgroup we create is named ``planlab-<owner pid>-<name>-<random>`` and is
removed by :func:`release`; :func:`cleanup_stale_cgroups` removes those whose
owner died without releasing them.

Typical use for a worker started with ``subprocess``::

    applied = create_limits(cpus=0.5, memory_mb=512, name="w3")
    proc = subprocess.Popen(cmd, env={**os.environ, **thread_env(0.5)},
                            preexec_fn=applied.join_self)   # limited from its first instruction
    ...
    release(applied)

or ``apply_limits(pid, ...)`` for a process that already runs (memory it
already holds is then charged to its old cgroup: attach early).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "AppliedLimits",
    "CpuMode",
    "LimitSupport",
    "MemoryMode",
    "ResourceLimiter",
    "THREAD_ENV_VARS",
    "apply_limits",
    "apply_thread_limits",
    "attach",
    "cleanup_stale_cgroups",
    "create_limits",
    "probe_limits",
    "release",
    "thread_env",
]

CpuMode = Literal["cgroup-v1", "cgroup-v2", "affinity", "none"]
MemoryMode = Literal["cgroup-v1", "cgroup-v2", "none"]

PREFIX = "planlab-"
DEFAULT_PERIOD_US = 10_000
"""CFS period: 10 ms so tasks shorter than ~100 ms are throttled too (FACTS.md)."""
_MIN_QUOTA_US = 1_000  # the kernel rejects smaller quotas
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_OWNER_RE = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


# --------------------------------------------------------------------------------------
# what the OS permits
# --------------------------------------------------------------------------------------
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


def _read(path: Path) -> str:
    return path.read_text().strip()


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
            enabled = set(_read(parent / "cgroup.subtree_control").split())
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


# --------------------------------------------------------------------------------------
# applying and releasing limits
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AppliedLimits:
    """What was actually enforced for one worker, and how to undo it.

    ``cpu_enforced`` / ``memory_enforced`` take the values of :data:`CpuMode` /
    :data:`MemoryMode`; ``"none"`` means the limit was requested but could not
    be enforced (``notes`` say why) or was not requested (``cpus``/``memory_mb``
    is ``None``).
    """

    name: str
    cpus: float | None
    memory_mb: float | None
    cpu_enforced: str
    memory_enforced: str
    cpu_cgroup: Path | None = None
    memory_cgroup: Path | None = None
    affinity: frozenset[int] | None = None
    period_us: int | None = None
    quota_us: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def cgroups(self) -> tuple[Path, ...]:
        """The distinct cgroup directories created for these limits."""
        paths = [p for p in (self.cpu_cgroup, self.memory_cgroup) if p is not None]
        return tuple(dict.fromkeys(paths))

    def join_self(self) -> None:
        """Move the calling process into the limits.

        Meant as ``subprocess.Popen(..., preexec_fn=applied.join_self)`` or as the
        first line of a forked worker, so the process is limited before it runs
        any task code and all its memory is charged to its own cgroup.  It only
        writes a few small files (no imports, no locks), which is what code
        between fork and exec may do.
        """
        attach(self, 0)

    def summary(self) -> str:
        return f"cpu={self.cpu_enforced} memory={self.memory_enforced}"


def _cgroup_name(name: str) -> str:
    clean = _NAME_RE.sub("_", name).strip("._")[:48] or "worker"
    return f"{PREFIX}{os.getpid()}-{clean}-{secrets.token_hex(3)}"


def _write(path: Path, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def create_limits(
    cpus: float | None,
    memory_mb: float | None,
    name: str,
    *,
    support: LimitSupport | None = None,
    period_us: int = DEFAULT_PERIOD_US,
    cpu_offset: int = 0,
) -> AppliedLimits:
    """Create (empty) cgroups for ``cpus`` CPUs and ``memory_mb`` MiB; attach processes later.

    ``cpu_offset`` rotates which CPUs the affinity fallback pins to, so that
    several limited workers do not all share CPU 0.  Raises ``ValueError`` for
    a non-positive request; anything the OS refuses is reported in the result
    (``*_enforced == "none"`` plus a note), never silently dropped.
    """
    if cpus is not None and not cpus > 0:
        raise ValueError(f"cpus must be > 0, got {cpus!r}")
    if memory_mb is not None and not memory_mb > 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb!r}")
    support = support or probe_limits()
    cg_name = _cgroup_name(name)
    notes: list[str] = []
    created: list[Path] = []
    cpu_mode, mem_mode = "none", "none"
    cpu_cg = mem_cg = None
    affinity: frozenset[int] | None = None
    quota_us: int | None = None
    try:
        if cpus is not None:
            if support.cpu in ("cgroup-v1", "cgroup-v2") and support.cpu_parent is not None:
                quota_us = max(_MIN_QUOTA_US, round(cpus * period_us))
                if quota_us != round(cpus * period_us):
                    notes.append(f"cpu quota raised to the kernel minimum {_MIN_QUOTA_US} us")
                cpu_cg = support.cpu_parent / cg_name
                cpu_cg.mkdir()
                created.append(cpu_cg)
                if support.cpu == "cgroup-v1":
                    _write(cpu_cg / "cpu.cfs_period_us", period_us)
                    _write(cpu_cg / "cpu.cfs_quota_us", quota_us)
                else:
                    _write(cpu_cg / "cpu.max", f"{quota_us} {period_us}")
                cpu_mode = support.cpu
            elif support.cpu == "affinity":
                available = sorted(os.sched_getaffinity(0))
                n = min(len(available), max(1, math.floor(cpus)))
                start = cpu_offset % len(available)
                affinity = frozenset((available * 2)[start : start + n])
                cpu_mode = "affinity"
                if n != cpus:
                    notes.append(f"cpu: pinned to {n} whole CPU(s) for {cpus:g} requested")
            else:
                notes.append(f"cpu not enforced: {support.cpu_reason}")
        if memory_mb is not None:
            if support.memory in ("cgroup-v1", "cgroup-v2") and support.memory_parent is not None:
                limit = int(memory_mb * 2**20)
                mem_cg = support.memory_parent / cg_name
                if mem_cg != cpu_cg:  # v2: one directory holds both controllers
                    mem_cg.mkdir()
                    created.append(mem_cg)
                if support.memory == "cgroup-v1":
                    _write(mem_cg / "memory.limit_in_bytes", limit)
                    # Also cap memory+swap where swap accounting exists, so that the
                    # limit kills instead of silently swapping on machines with swap.
                    with contextlib.suppress(OSError):
                        _write(mem_cg / "memory.memsw.limit_in_bytes", limit)
                else:
                    _write(mem_cg / "memory.max", limit)
                    with contextlib.suppress(OSError):
                        _write(mem_cg / "memory.swap.max", 0)
                mem_mode = support.memory
            else:
                notes.append(f"memory not enforced: {support.memory_reason}")
    except OSError:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return AppliedLimits(
        name=name,
        cpus=cpus,
        memory_mb=memory_mb,
        cpu_enforced=cpu_mode,
        memory_enforced=mem_mode,
        cpu_cgroup=cpu_cg,
        memory_cgroup=mem_cg,
        affinity=affinity,
        period_us=period_us if cpu_cg is not None else None,
        quota_us=quota_us,
        notes=tuple(notes),
    )


def attach(applied: AppliedLimits, pid: int) -> None:
    """Put process ``pid`` (0: the caller) under ``applied``; its future children inherit it."""
    for path in applied.cgroups:
        # Writing to cgroup.procs moves the whole thread group.
        _write(path / "cgroup.procs", pid if pid else os.getpid())
    if applied.affinity is not None:
        os.sched_setaffinity(pid, applied.affinity)


def apply_limits(
    pid: int,
    cpus: float | None,
    memory_mb: float | None,
    name: str,
    *,
    support: LimitSupport | None = None,
    period_us: int = DEFAULT_PERIOD_US,
    cpu_offset: int = 0,
) -> AppliedLimits:
    """Limit the running process ``pid`` to ``cpus`` CPUs and ``memory_mb`` MiB.

    Memory the process already holds stays charged to its previous cgroup, so
    prefer :func:`create_limits` + :meth:`AppliedLimits.join_self` for new
    processes.  A process exceeding ``memory_mb`` is killed with SIGKILL (its
    exit status is −9).
    """
    applied = create_limits(
        cpus, memory_mb, name, support=support, period_us=period_us, cpu_offset=cpu_offset
    )
    try:
        attach(applied, pid)
    except OSError:
        release(applied)
        raise
    return applied


def _procs(path: Path) -> list[int]:
    try:
        return [int(x) for x in _read(path / "cgroup.procs").split()]
    except (OSError, ValueError):
        return []


def _rmdir_cgroup(path: Path, *, kill: bool, timeout: float) -> None:
    """Empty ``path`` (kill its processes, or move them to the parent cgroup) and remove it."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _procs(path)
        for pid in pids:
            with contextlib.suppress(OSError):
                if kill:
                    os.kill(pid, signal.SIGKILL)
                else:
                    _write(path.parent / "cgroup.procs", pid)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY while killed processes finish exiting.
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.002)


def release(applied: AppliedLimits, *, kill: bool = False, timeout: float = 5.0) -> None:
    """Remove the cgroups of ``applied``; never leaves a cgroup behind.

    Processes still inside are moved to the parent cgroup (they keep running,
    unlimited) or, with ``kill=True``, killed.  Affinity is not undone: it only
    ever applied to the worker's own processes.
    """
    errors: list[str] = []
    for path in applied.cgroups:
        try:
            _rmdir_cgroup(path, kill=kill, timeout=timeout)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    if errors:
        raise OSError(f"could not remove cgroup(s): {'; '.join(errors)}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale_cgroups(
    support: LimitSupport | None = None, *, kill: bool = False, include_own: bool = False
) -> list[Path]:
    """Remove ``planlab-*`` cgroups whose creating process has died (a crashed run).

    The owner's pid is part of every name, so cgroups of other live planlab
    processes (e.g. a concurrent run) are left alone; ``include_own=True`` also
    removes this process's own.  Processes still inside are moved to the parent
    cgroup, or killed with ``kill=True``.  Returns the removed directories.
    """
    support = support or probe_limits()
    parents = {p for p in (support.cpu_parent, support.memory_parent) if p is not None}
    removed: list[Path] = []
    for parent in sorted(parents):
        with contextlib.suppress(OSError):
            for child in sorted(parent.iterdir()):
                m = _OWNER_RE.match(child.name)
                if not m or not child.is_dir():
                    continue
                owner = int(m.group(1))
                if owner == os.getpid() and not include_own:
                    continue
                if owner != os.getpid() and pid_alive(owner):
                    continue
                with contextlib.suppress(OSError):
                    _rmdir_cgroup(child, kill=kill, timeout=2.0)
                    removed.append(child)
    return removed


# --------------------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------------------
def thread_env(cpus: float) -> dict[str, str]:
    """Environment that sizes BLAS/OpenMP thread pools to a CPU quota.

    ``max(1, floor(cpus))`` threads: pools sized to the machine spin on a
    fraction of a CPU and burn the quota (measured ×4.5 slower instead of ×4).
    Must be in the environment before numpy/BLAS is imported.
    """
    n = str(max(1, math.floor(cpus)))
    return {var: n for var in THREAD_ENV_VARS}


def apply_thread_limits(cpus: float) -> str:
    """Size this process's thread pools to ``cpus``; returns ``"threadpoolctl"`` or ``"env"``.

    Sets :func:`thread_env` in ``os.environ`` (libraries loaded later and child
    processes read it) and, if threadpoolctl is installed, also resizes pools of
    libraries already loaded.  threadpoolctl is optional: not a dependency.
    """
    env = thread_env(cpus)
    os.environ.update(env)
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-not-found]
    except ImportError:
        return "env"
    threadpool_limits(limits=int(env["OMP_NUM_THREADS"]))
    return "threadpoolctl"


# --------------------------------------------------------------------------------------
# convenience
# --------------------------------------------------------------------------------------
class ResourceLimiter:
    """Probe once, limit many workers, release them all on close.

    Keeps the probe result (it costs a mkdir), rotates affinity-fallback CPUs
    between workers, and remembers every cgroup it made so that ``close()``
    (or leaving the ``with`` block) removes them even when a run fails.
    """

    def __init__(self, support: LimitSupport | None = None, *, period_us: int = DEFAULT_PERIOD_US) -> None:
        self.support = support or probe_limits()
        self.period_us = period_us
        self._live: dict[int, AppliedLimits] = {}
        self._next_cpu = 0

    def create(self, cpus: float | None, memory_mb: float | None, name: str) -> AppliedLimits:
        applied = create_limits(
            cpus,
            memory_mb,
            name,
            support=self.support,
            period_us=self.period_us,
            cpu_offset=self._next_cpu,
        )
        if applied.affinity:
            self._next_cpu += len(applied.affinity)
        self._live[id(applied)] = applied
        return applied

    def apply(self, pid: int, cpus: float | None, memory_mb: float | None, name: str) -> AppliedLimits:
        applied = self.create(cpus, memory_mb, name)
        try:
            attach(applied, pid)
        except OSError:
            self.release(applied)
            raise
        return applied

    def release(self, applied: AppliedLimits, *, kill: bool = False) -> None:
        self._live.pop(id(applied), None)
        release(applied, kill=kill)

    def close(self, *, kill: bool = False) -> None:
        errors: list[str] = []
        for applied in list(self._live.values()):
            try:
                self.release(applied, kill=kill)
            except OSError as exc:
                errors.append(str(exc))
        if errors:
            raise OSError("; ".join(errors))

    def __enter__(self) -> ResourceLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
