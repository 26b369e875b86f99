"""Real CPU and memory limits (cgroups where permitted, fallbacks otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.limits import (
    PREFIX,
    THREAD_ENV_VARS,
    AppliedLimits,
    LimitSupport,
    ResourceLimiter,
    apply_limits,
    apply_thread_limits,
    cleanup_stale_cgroups,
    create_limits,
    probe_limits,
    release,
    thread_env,
)

SUPPORT = probe_limits()
CPU_CGROUP = SUPPORT.cpu in ("cgroup-v1", "cgroup-v2")
MEM_CGROUP = SUPPORT.memory in ("cgroup-v1", "cgroup-v2")
needs_cpu_cgroup = pytest.mark.skipif(not CPU_CGROUP, reason=f"no CPU cgroup: {SUPPORT.cpu_reason}")
needs_mem_cgroup = pytest.mark.skipif(not MEM_CGROUP, reason=f"no memory cgroup: {SUPPORT.memory_reason}")

# Burn a fixed amount of CPU time and print the wall time it took: under a quota
# the wall time stretches, whatever the speed of the machine.
BURN = (
    "import time\n"
    "c0, t0 = time.process_time(), time.perf_counter()\n"
    "while time.process_time() - c0 < 0.3: pass\n"
    "print(time.perf_counter() - t0)\n"
)


def _own_cgroups() -> list[Path]:
    parents = {p for p in (SUPPORT.cpu_parent, SUPPORT.memory_parent) if p is not None}
    mine = f"{PREFIX}{os.getpid()}-"
    return [c for p in parents for c in p.iterdir() if c.name.startswith(mine)]


@pytest.fixture(autouse=True)
def no_cgroups_left_behind() -> Iterator[None]:
    before = set(_own_cgroups())
    yield
    assert set(_own_cgroups()) == before, "a test left a cgroup behind"


def _run(applied: AppliedLimits | None, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=applied.join_self if applied else None,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_probe_is_coherent() -> None:
    s = probe_limits()
    assert s.cpu in ("cgroup-v1", "cgroup-v2", "affinity", "none")
    assert s.memory in ("cgroup-v1", "cgroup-v2", "none")
    assert s.cpu_reason and s.memory_reason
    assert (s.cpu_parent is not None) == (s.cpu in ("cgroup-v1", "cgroup-v2"))
    assert (s.memory_parent is not None) == (s.memory in ("cgroup-v1", "cgroup-v2"))
    for parent in (s.cpu_parent, s.memory_parent):
        assert parent is None or parent.is_dir()
    assert "cpu:" in s.describe()


def test_memory_cgroup_is_nested_under_our_own() -> None:
    if SUPPORT.memory != "cgroup-v1":
        pytest.skip(f"memory is {SUPPORT.memory}")
    own = next(
        line.split(":", 2)[2].strip()
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if "memory" in line.split(":", 2)[1].split(",")
    )
    assert str(SUPPORT.memory_parent).endswith(own.rstrip("/")) or own == "/"


def test_thread_env() -> None:
    assert set(thread_env(0.5)) == set(THREAD_ENV_VARS)
    assert set(thread_env(0.5).values()) == {"1"}
    assert set(thread_env(1.0).values()) == {"1"}
    assert set(thread_env(2.0).values()) == {"2"}
    assert set(thread_env(3.7).values()) == {"3"}
    assert "OMP_NUM_THREADS" in THREAD_ENV_VARS and "OPENBLAS_NUM_THREADS" in THREAD_ENV_VARS


def test_apply_thread_limits_sets_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in THREAD_ENV_VARS:
        monkeypatch.setenv(var, "99")  # restored after the test
    how = apply_thread_limits(2.5)
    assert how in ("env", "threadpoolctl")
    assert all(os.environ[var] == "2" for var in THREAD_ENV_VARS)


def test_bad_requests_are_rejected() -> None:
    with pytest.raises(ValueError, match="cpus"):
        create_limits(0, None, "x", support=SUPPORT)
    with pytest.raises(ValueError, match="memory_mb"):
        create_limits(None, -1, "x", support=SUPPORT)


@needs_cpu_cgroup
def test_cpu_quota_slows_a_busy_loop() -> None:
    # The loop burns 0.3 s of CPU.  Under a 0.5-CPU quota it cannot get more than
    # half a CPU, so it needs at least ~0.6 s of wall time whatever else runs on the
    # machine (other load only slows it further), and the cgroup counts throttling.
    # Without the quota an idle 2-vCPU machine runs it in ~0.3 s.
    applied = create_limits(0.5, None, "cpu-test", support=SUPPORT)
    try:
        assert applied.cpu_enforced == SUPPORT.cpu
        assert applied.period_us == 10_000 and applied.quota_us == 5_000
        limited = _run(applied, BURN)
        assert limited.returncode == 0, limited.stderr
        share = 0.3 / float(limited.stdout)
        if SUPPORT.cpu == "cgroup-v1" and applied.cpu_cgroup is not None:
            throttled = int((applied.cpu_cgroup / "cpu.stat").read_text().split("nr_throttled")[1].split()[0])
            if not throttled and share < 0.4:   # other work kept it below its quota: nothing to throttle
                pytest.skip(f"the machine is saturated: the loop got {share:.2f} CPU, never reaching its quota")
            assert throttled > 0
    finally:
        release(applied)
    assert share <= 0.6, f"the loop got {share:.2f} CPU under a 0.5-CPU quota"


@needs_mem_cgroup
def test_exceeding_the_memory_limit_is_a_sigkill() -> None:
    applied = create_limits(None, 64, "mem-test", support=SUPPORT)
    try:
        assert applied.memory_enforced == SUPPORT.memory
        small = _run(applied, "b = b'x' * (8 << 20); print('ok')")
        assert small.returncode == 0 and small.stdout.strip() == "ok", small.stderr
        big = _run(applied, "b = b'x' * (256 << 20); print('survived')")
        assert big.returncode == -9, (big.returncode, big.stdout, big.stderr)
        assert "survived" not in big.stdout
    finally:
        release(applied)
    assert not any(p.exists() for p in applied.cgroups)


@pytest.mark.skipif(not (CPU_CGROUP or MEM_CGROUP), reason="no cgroups here")
def test_apply_to_running_process_and_release_moves_it_out() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        applied = apply_limits(proc.pid, 1.0, 256, "running", support=SUPPORT)
        assert applied.cgroups
        for cg in applied.cgroups:
            assert str(proc.pid) in (cg / "cgroup.procs").read_text().split()
        release(applied)  # default: move the process out, keep it running
        assert not any(p.exists() for p in applied.cgroups)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not (CPU_CGROUP or MEM_CGROUP), reason="no cgroups here")
def test_release_with_kill_ends_the_processes() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        applied = apply_limits(proc.pid, 0.5, 128, "killme", support=SUPPORT)
        release(applied, kill=True)
        assert proc.wait(timeout=5) == -9
        assert not any(p.exists() for p in applied.cgroups)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not (CPU_CGROUP or MEM_CGROUP), reason="no cgroups here")
def test_cleanup_removes_only_cgroups_of_dead_owners() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = SUPPORT.cpu_parent or SUPPORT.memory_parent
    assert parent is not None
    stale = parent / f"{PREFIX}{dead.pid}-crashed-abcdef"
    stale.mkdir()
    live = create_limits(0.5 if CPU_CGROUP else None, 64 if MEM_CGROUP else None, "live", support=SUPPORT)
    try:
        removed = cleanup_stale_cgroups(SUPPORT)
        assert stale in removed and not stale.exists()
        assert all(p.exists() for p in live.cgroups)
    finally:
        release(live)
        if stale.exists():
            stale.rmdir()


@pytest.mark.skipif(not (CPU_CGROUP or MEM_CGROUP), reason="no cgroups here")
def test_limiter_releases_everything_on_close() -> None:
    with ResourceLimiter(SUPPORT) as limiter:
        a = limiter.create(0.5, 64, "a")
        b = limiter.create(1.0, None, "b")
        made = a.cgroups + b.cgroups
        assert all(p.exists() for p in made)
        limiter.release(a)
        assert not any(p.exists() for p in a.cgroups)
    assert not any(p.exists() for p in made)


def test_affinity_fallback_pins_whole_cpus() -> None:
    support = LimitSupport("affinity", "none", "forced by the test", "forced by the test")
    applied = create_limits(1.5, 128, "pinned", support=support, cpu_offset=1)
    assert applied.cpu_enforced == "affinity"
    assert applied.memory_enforced == "none"
    assert applied.affinity is not None and len(applied.affinity) == 1
    assert applied.affinity <= os.sched_getaffinity(0)
    assert any("memory not enforced" in n for n in applied.notes)
    assert any("whole CPU" in n for n in applied.notes)
    assert not applied.cgroups
    out = _run(applied, "import os; print(sorted(os.sched_getaffinity(0)))")
    assert out.stdout.strip() == str(sorted(applied.affinity))
    release(applied)  # nothing to remove, must not fail


def test_nothing_enforced_is_said_not_hidden() -> None:
    support = LimitSupport("none", "none", "no cgroups, no affinity", "no cgroups")
    applied = create_limits(0.5, 64, "bare", support=support)
    assert (applied.cpu_enforced, applied.memory_enforced) == ("none", "none")
    assert len(applied.notes) == 2
    unrequested = create_limits(None, None, "nothing", support=SUPPORT)
    assert (unrequested.cpu_enforced, unrequested.memory_enforced) == ("none", "none")
    assert unrequested.notes == ()
