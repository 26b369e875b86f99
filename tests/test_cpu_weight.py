"""A pre-loading worker's cgroup weighs two jobs while its thread moves bytes (executor.limits.cpu_weight)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from executor.limits import cpu_weight, create_limits, probe_limits, release
from executor.limits.cpu_weight import weighted_for

SUPPORT = probe_limits()


def _joined(monkeypatch: pytest.MonkeyPatch, cgroup: Path | None, mode: str) -> None:
    limits = SimpleNamespace(cpu_cgroup=cgroup, cpu_enforced=mode)
    monkeypatch.setattr(cpu_weight, "joined_limits", lambda: SimpleNamespace(limits=limits))


@pytest.mark.parametrize("mode, name, base", [("cgroup-v1", "cpu.shares", 1024), ("cgroup-v2", "cpu.weight", 100)])
def test_the_weight_is_raised_inside_the_block_and_restored_after(monkeypatch, tmp_path, mode, name, base) -> None:
    _joined(monkeypatch, tmp_path, mode)
    with weighted_for(2) as raised:
        assert raised and (tmp_path / name).read_text() == str(2 * base)
    assert (tmp_path / name).read_text() == str(base)
    with pytest.raises(RuntimeError):      # restored when the block fails too
        with weighted_for(3):
            raise RuntimeError("x")
    assert (tmp_path / name).read_text() == str(base)


def test_no_cgroup_of_its_own_changes_nothing(monkeypatch, tmp_path) -> None:
    for mode, cgroup in (("affinity", tmp_path), ("none", tmp_path), ("cgroup-v1", None)):
        _joined(monkeypatch, cgroup, mode)
        with weighted_for(2) as raised:
            assert not raised
    monkeypatch.setattr(cpu_weight, "joined_limits", lambda: None)
    with weighted_for(2) as raised:
        assert not raised
    _joined(monkeypatch, tmp_path, "cgroup-v1")
    with weighted_for(1) as raised:        # one job: its default weight
        assert not raised
    assert not list(tmp_path.iterdir())
    _joined(monkeypatch, tmp_path / "gone", "cgroup-v1")     # a refused write: the run goes on
    with weighted_for(2) as raised:
        assert not raised


def test_the_preload_thread_moves_its_bytes_under_the_raised_weight(monkeypatch, tmp_path) -> None:
    from executor.worker_preload import _Preload

    _joined(monkeypatch, tmp_path, "cgroup-v1")
    seen = []

    class Wire:     # every input stored already: one EXISTS round trip, then the reads
        def call(self, commands):
            return [0] + [1] * (len(commands) - 1)

        def get_bulk(self, command):
            seen.append((tmp_path / "cpu.shares").read_text())
            return bytearray(b"v")

    pre = _Preload(Wire(), [("a", "k:a", None), ("b", "k:b", None)], threading.Event(), "wake")
    pre.run()
    assert pre.error is None and pre.complete and set(pre.data) == {"a", "b"}
    assert seen == ["2048", "2048"]
    assert (tmp_path / "cpu.shares").read_text() == "1024"


@pytest.mark.skipif(SUPPORT.cpu not in ("cgroup-v1", "cgroup-v2"), reason=f"no CPU cgroup: {SUPPORT.cpu_reason}")
def test_a_real_cgroup_weight_is_doubled_and_restored() -> None:
    applied = create_limits(2.0, None, "weight-test", support=SUPPORT)
    code = ("import sys, pickle; from executor.limits.cpu_weight import weight_file, weighted_for\n"
            "applied = pickle.loads(sys.stdin.buffer.read()); applied.join_self()\n"
            "path, base = weight_file()\n"
            "with weighted_for(2):\n    inside = path.read_text().strip()\n"
            "print(base, inside, path.read_text().strip())\n")
    try:
        import pickle

        done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(applied), capture_output=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        base, inside, after = map(int, done.stdout.split())
        assert inside == 2 * base and after == base
    finally:
        release(applied)
