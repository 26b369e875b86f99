"""No code from strangers: nothing read from the server is unpickled unauthenticated; open servers are refused."""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from executor import Executor, ExecutorSettings
from executor.auth import Forged, RunSealer, deployment_secret
from executor.plans import assigned_plan
from executor.server import check_url_security
from experiments.cli import main
from planning.errors import ExecutionError
from planning.sources.dsl import build_workflow, task


class Evil:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_forged_or_tampered_payload_is_refused_before_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    sealer = RunSealer(b"the deployment secret 0123", "run1")
    evil = pickle.dumps(Evil(marker))
    for blob in (evil, b"\0" * 32 + evil, RunSealer(b"another secret 0123456", "run1").seal(b"start", evil),
                 RunSealer(b"the deployment secret 0123", "run2").seal(b"start", evil),   # another run's key
                 sealer.seal(b"note", evil)):                                             # another label
        with pytest.raises(Forged, match="failed authentication"):
            sealer.loads(b"start", blob)
    assert not marker.exists()
    assert sealer.loads(b"start", sealer.dumps(b"start", {"ok": 1})) == {"ok": 1}


def test_a_seal_is_hmac_sha256_of_label_nul_payload_under_the_run_key() -> None:
    """The precomputed pads give exactly the standard tag, at every size and after a pickle round trip."""
    import copy
    import hashlib
    import hmac

    sealer = RunSealer(b"the deployment secret 0123", "run1")
    run_key = hmac.digest(b"the deployment secret 0123", b"planlab-run\0run1", "sha256")
    for data in (b"", b"x", bytes(range(256)) * 20, b"\1" * (1 << 20)):
        want = hmac.new(run_key, b"out:t1\0" + data, hashlib.sha256).digest()
        assert sealer.seal(b"out:t1", data) == want + data
        assert bytes(sealer.open(b"out:t1", bytearray(want + data))) == data   # any buffer
    again = pickle.loads(pickle.dumps(sealer))   # the hash states are rebuilt, not pickled
    assert again.seal(b"note", b"abc") == sealer.seal(b"note", b"abc") and again.run_id == "run1"
    assert copy.copy(sealer).seal(b"note", b"abc") == sealer.seal(b"note", b"abc")


@task
def slow(x):
    time.sleep(1.0)
    return x


def test_pickles_injected_into_queues_and_results_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Evil(marker))
    wf = build_workflow(slow.named("b")(slow.named("a")(1)), name="victim")
    plan = assigned_plan(wf, {"a": "w0", "b": "w1"}, "small")
    with Executor(settings=ExecutorSettings(lease_s=1.0)) as ex:
        client = ex.client
        client.rpush(f"pl:ctl:{ex.launcher_id}", evil)          # a control message for the launcher
        outcome: dict[str, object] = {}

        def attack() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                runs = [k.decode() for k in client.scan_iter(match="pl:{*}:live")]
                if runs:
                    prefix = runs[0][:-len("live")]
                    client.set(prefix + "out:a", evil)        # a result overwritten
                    client.rpush(prefix + "inbox:w1", evil)   # a notification
                    client.rpush(prefix + "launch", evil)     # a start message
                    return
                time.sleep(0.01)

        attacker = threading.Thread(target=attack)
        attacker.start()
        try:
            outcome["result"] = ex.run(wf, plan)
        except ExecutionError as exc:
            outcome["error"] = str(exc)
        attacker.join()
        assert "error" in outcome, "a run whose data was tampered with must fail"
        assert "authentication" in outcome["error"]
        assert not marker.exists()
        # the executor is healthy afterwards
        assert ex.run(wf, plan).results == {"b": 1}
    assert not marker.exists()


def test_a_server_on_another_host_without_a_password_is_refused() -> None:
    for url in ("redis://10.1.2.3:6379/0", "rediss://db.example.org:6380/0", "redis://:@10.0.0.1:6379"):
        with pytest.raises(ExecutionError, match="on another host and the URL has no password"):
            check_url_security(url)
        check_url_security(url, insecure=True)
    for url in ("redis://127.0.0.1:6379/0", "redis://localhost:1/0", "redis://[::1]:6379", "unix:///tmp/r.sock",
                "redis://:pw@10.1.2.3:6379/0", "rediss://user:pw@db.example.org:6380/0"):
        check_url_security(url)
    with pytest.raises(ExecutionError, match="another host"):
        Executor("redis://10.1.2.3:6379/0")


def test_the_agent_refuses_open_servers_and_needs_the_secret(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLANLAB_SECRET", raising=False)
    monkeypatch.delenv("PLANLAB_SECRET_FILE", raising=False)
    assert main(["agent", "--redis-url", "redis://10.1.2.3:6379/0"]) == 2
    err = capsys.readouterr().err
    assert "--insecure" in err and len(err.strip().splitlines()) == 1
    from executor.server import EmbeddedRedis

    with EmbeddedRedis(tcp=True) as server:
        assert main(["agent", "--redis-url", server.url]) == 2
        err = capsys.readouterr().err
        assert "needs the deployment secret" in err and len(err.strip().splitlines()) == 1
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ExecutionError, match="shorter than 16 bytes"):
        deployment_secret(secret_file=short)


def test_an_executor_relying_on_agents_needs_a_shared_secret(monkeypatch) -> None:
    monkeypatch.delenv("PLANLAB_SECRET", raising=False)
    monkeypatch.delenv("PLANLAB_SECRET_FILE", raising=False)
    with pytest.raises(ExecutionError, match="needs the agents' deployment secret"):
        Executor(local_launcher=False)
    monkeypatch.setenv("PLANLAB_SECRET", "a long enough shared secret")
    assert Executor(local_launcher=False).secret == b"a long enough shared secret"


class _OneNote:
    """A worker's wire on which one blocking pop is answered with ``notes`` (no server)."""

    def __init__(self, notes: list[bytes]) -> None:
        self.notes, self.pending = notes, 1

    def spin_for_reply(self, seconds: float) -> bool:
        return True

    def read(self, n: int) -> list:
        self.pending = 0
        return [[b"inbox", self.notes[0]], self.notes[1:]]


def _note_reader(sealer: RunSealer, notes: list[bytes], coded: set[str]):
    """A logical worker as far as reading notifications and its inputs goes (no process, no server)."""
    from types import SimpleNamespace

    from executor.worker import _LogicalWorker

    w = _LogicalWorker.__new__(_LogicalWorker)
    w.wire, w.spin_s, w.sealer = _OneNote(notes), 0.0, sealer
    w.spec = SimpleNamespace(coded=coded)
    w.settings = SimpleNamespace(bytes_scale=1.0, max_replay_bytes=1 << 20)
    w.ready_time, w.prefetched, w.vouched, w.decoded = {}, {}, {}, {}
    w.protocol = SimpleNamespace(notified=lambda state, task_id: None)
    w.state = None
    return w


def test_an_output_inside_an_authenticated_note_is_not_authenticated_twice_and_others_still_are(tmp_path) -> None:
    """A note's tag covers the sealed output riding in it: the reader unpickles it without a second check
    (``RunSealer.vouched``); bytes read from the server on their own (pre-load, a start's fetch) are checked."""
    from executor.messages import encode_note, output_label

    sealer = RunSealer(b"the deployment secret 0123", "run1")
    out = sealer.seal(output_label("p"), pickle.dumps({"v": 41}))
    raw = b"replay bytes"
    w = _note_reader(sealer, [encode_note(sealer, "c", 1.0, "p", out), encode_note(sealer, "d", 2.0, "q", raw)],
                     coded={"p", "c"})
    w._wait_notifications()
    assert w.vouched == {"p": out} and w.prefetched == {"q": raw}      # a replay output stays raw bytes
    assert w.ready_time == {"c": 1.0, "d": 2.0}
    calls = []

    class Counting:   # the run's sealer, counting the tags it checks
        vouched = staticmethod(RunSealer.vouched)

        def open(self, label, blob):
            calls.append(label)
            return sealer.open(label, blob)

    w.sealer = Counting()
    fetch = [type("F", (), {"parent": "p", "nbytes": 0})()]
    assert w._fetch("c", fetch) == {"p": {"v": 41}} and calls == [] and w.vouched == {}
    assert w._fetch("c", fetch) == {"p": {"v": 41}}      # decoded once: the second reader takes it from memory
    # the same bytes, tampered, from the server (a pre-load put them in ``prefetched``): refused, never unpickled
    marker = tmp_path / "pwned"
    w.decoded, w.prefetched = {}, {"p": out[:32] + pickle.dumps(Evil(marker))}
    with pytest.raises(Forged, match="failed authentication"):
        w._fetch("c", fetch)
    assert calls == [b"out:p"] and not marker.exists()


def test_a_vouched_payload_is_the_seal_without_its_tag_and_a_tagless_one_is_refused() -> None:
    sealer = RunSealer(b"the deployment secret 0123", "run1")
    assert bytes(RunSealer.vouched(sealer.seal(b"out:t", b"payload"))) == b"payload"
    with pytest.raises(Forged, match="shorter than a seal's tag"):
        RunSealer.vouched(b"\0" * 31)
