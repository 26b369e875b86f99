"""The embedded Redis-protocol server and connecting to servers by URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from executor.server import (
    EmbeddedRedis,
    connect,
    find_server_binary,
    redacted_url,
    redis_endpoint,
)
from planning.errors import ExecutionError


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (exited, or a zombie awaiting its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def protected() -> Iterator[EmbeddedRedis]:
    """One password-protected server shared by the URL tests (start-up costs ~40 ms)."""
    with EmbeddedRedis(password="s3cr:t/pw") as server:
        yield server


def test_binary_is_found_and_executable() -> None:
    binary = find_server_binary()
    assert binary.is_file() and os.access(binary, os.X_OK)


def test_start_ping_stop_leaves_nothing_behind() -> None:
    server = EmbeddedRedis().start()
    try:
        assert server.running
        assert server.url == f"unix://{server.socket_path}"
        assert server.port is None
        assert server.start_seconds is not None and server.start_seconds < 10
        r = server.client()
        assert r.ping() is True
        r.set("k", b"v")
        assert redis.Redis.from_url(server.url).get("k") == b"v"
        pid, tmpdir = server.pid, server.tmpdir
        assert os.path.exists(server.socket_path)
    finally:
        server.stop()
    assert not server.running
    assert _wait_gone(pid)
    assert not os.path.exists(tmpdir)
    server.stop()  # idempotent
    with pytest.raises(ExecutionError, match="not running"):
        _ = server.url


def test_context_manager_stops_on_error() -> None:
    with pytest.raises(RuntimeError), EmbeddedRedis() as server:
        pid, tmpdir = server.pid, server.tmpdir
        raise RuntimeError("boom")
    assert _wait_gone(pid)
    assert not os.path.exists(tmpdir)


def test_tcp_mode_gives_a_redis_url_and_keeps_the_unix_socket() -> None:
    with EmbeddedRedis(tcp=True) as server:
        assert server.port is not None
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        over_tcp = redis.Redis.from_url(server.url)
        over_tcp.set("x", 1)
        assert server.client().get("x") == b"1"  # the client uses the unix socket
        assert redis.Redis.from_url(server.unix_url).get("x") == b"1"
        with socket.create_connection(("127.0.0.1", server.port), timeout=1):
            pass


def test_tcp_on_a_network_interface_requires_a_password() -> None:
    with pytest.raises(ExecutionError, match="without a password"):
        EmbeddedRedis(tcp=True, host="0.0.0.0")


def test_bad_option_fails_with_the_log_tail() -> None:
    server = EmbeddedRedis(config={"no-such-directive": "1"})
    with pytest.raises(ExecutionError, match="(?i)exited with code.*log tail") as info:
        server.start()
    assert "no-such-directive" in str(info.value).lower()
    assert not server.running


def test_connect_with_password_in_url(protected: EmbeddedRedis) -> None:
    assert ":s3cr%3At%2Fpw@" in protected.url  # special characters are escaped
    client, started = connect(protected.url)
    assert started is None
    assert client.ping() is True
    client.close()


def test_connect_over_tcp_with_password() -> None:
    with EmbeddedRedis(tcp=True, password="pw") as server:
        client, _ = connect(server.url)
        assert client.ping() is True
        bad = server.url.replace(":pw@", ":nope@")
        with pytest.raises(ExecutionError, match="refused the credentials"):
            connect(bad)


def test_wrong_or_missing_password_is_a_clear_error(protected: EmbeddedRedis) -> None:
    wrong = protected.url.replace("s3cr%3At%2Fpw", "wrong")
    with pytest.raises(ExecutionError, match="refused the credentials") as info:
        connect(wrong)
    assert "wrong" not in str(info.value)  # the password is redacted
    assert info.value.fix and "password" in info.value.fix
    with pytest.raises(ExecutionError, match="refused the credentials"):
        connect(f"unix://{protected.socket_path}")


def test_unreachable_url_is_a_clear_error() -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    with pytest.raises(ExecutionError, match="cannot reach") as info:
        connect(url, timeout=1.0)
    assert url in str(info.value)
    assert info.value.fix
    with pytest.raises(ExecutionError, match="cannot reach"):
        connect("unix:///nonexistent/planlab.sock", timeout=1.0)


def test_unsupported_scheme_is_rejected() -> None:
    with pytest.raises(ExecutionError, match="unsupported Redis URL"):
        connect("http://127.0.0.1:6379")


def test_redacted_url() -> None:
    assert redacted_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redacted_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redacted_url("redis://h:1/0") == "redis://h:1/0"


def test_endpoint_embedded_by_default() -> None:
    with redis_endpoint() as ep:
        assert ep.embedded
        assert ep.url.startswith("unix://")
        ep.client().set("a", "b")
        assert redis.Redis.from_url(ep.url).get("a") == b"b"
        assert ep.server is not None
        pid, tmpdir = ep.server.pid, ep.server.tmpdir
    assert _wait_gone(pid)
    assert not os.path.exists(tmpdir)


def test_endpoint_embedded_tcp() -> None:
    with redis_endpoint(None, tcp=True) as ep:
        assert ep.url.startswith("redis://127.0.0.1:")
        assert ep.client().ping() is True


def test_endpoint_by_url_does_not_stop_the_external_server(protected: EmbeddedRedis) -> None:
    with redis_endpoint(protected.url) as ep:
        assert not ep.embedded
        assert ep.url == protected.url
        assert ep.client().ping() is True
    assert protected.running
    assert protected.client().ping() is True


def test_server_dies_with_a_killed_parent() -> None:
    """A crashed run must not leave a server running (parent-death signal)."""
    code = (
        "from executor.server import EmbeddedRedis\n"
        "import time\n"
        "s = EmbeddedRedis().start()\n"
        "print(s.pid, s.tmpdir, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid_text, tmpdir = parent.stdout.readline().split()
    finally:
        parent.kill()
        parent.wait()
    try:
        assert _wait_gone(int(pid_text), timeout=5.0)
    finally:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
