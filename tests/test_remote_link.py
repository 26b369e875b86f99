"""Storage behind a shaped network link (benchmarks/_remote_link.py): the commands, bad rates, and - where this
machine allows (root, iproute2) - a real server behind a real shaped veth pair that moves bytes at the link's rate
and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _remote_link as link  # noqa: E402


def test_a_rate_is_one_tc_reads_and_a_bad_one_names_the_fix() -> None:
    assert link.check_rate("1gbit") == "1gbit" and link.check_rate(" 500Mbit ") == "500mbit"
    for bad in ("fast", "1 gbit", "-1gbit", "10", ""):
        with pytest.raises(link.RemoteLinkError, match="e.g. 1gbit"):
            link.check_rate(bad)


def test_each_direction_of_the_pair_gets_its_own_shaper_at_the_rate() -> None:
    commands = link.setup_commands("200mbit")
    shapers = [c for c in commands if "tbf" in c]
    assert len(shapers) == 2 and all(c[c.index("rate") + 1] == "200mbit" for c in shapers)
    assert link.HOST_END in shapers[0] and link.STORE_END in shapers[1] and shapers[1][:4] == ["ip", "netns", "exec",
                                                                                                  link.NAMESPACE]
    assert commands[0] == ["ip", "netns", "add", link.NAMESPACE]
    assert link.teardown_commands()[0] == ["ip", "netns", "delete", link.NAMESPACE]


def test_without_root_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(link.RemoteLinkError, match="needs root"):
        with link.remote_store("1gbit"):
            pass


def _can_shape() -> bool:
    if link._missing() is not None:
        return False
    probe = subprocess.run(["ip", "netns", "add", "planlab-probe"], capture_output=True)
    subprocess.run(["ip", "netns", "delete", "planlab-probe"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_shape(), reason="needs root, iproute2 and network namespaces")
def test_a_server_behind_the_link_moves_bytes_at_its_rate_and_nothing_is_left() -> None:
    payload = os.urandom(4_000_000)
    with link.remote_store("100mbit") as url:           # 12.5 MB/s: 4 MB take >= 0.32 s each way
        assert url.startswith(f"redis://:") and link.STORE_ADDRESS in url
        client = redis.Redis.from_url(url, socket_timeout=30)
        start = time.perf_counter()
        client.set("k", payload)
        up = time.perf_counter() - start
        start = time.perf_counter()
        assert client.get("k") == payload
        down = time.perf_counter() - start
        client.close()
        with pytest.raises(redis.AuthenticationError):    # the password is the link's own
            redis.Redis(host=link.STORE_ADDRESS, port=link.PORT, socket_timeout=5).set("x", 1)
    assert up > 0.2 and down > 0.2        # shaped (unshaped, 4 MB over a veth take a few ms)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert link.NAMESPACE not in names
    assert subprocess.run(["ip", "link", "show", link.HOST_END], capture_output=True).returncode != 0
