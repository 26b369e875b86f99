"""Storage behind a real network link: the embedded server's binary in its own network namespace, reached through
a veth pair whose two directions the kernel shapes to a rate (``tc`` token bucket).

Why: on one host the executor's server is a memory copy away - 2 GB/s for large values - so a fan-in's download is a
few percent of a run and the transfer optimizations (pre-load, delayed I/O) have little to hide.  Serverless workers
reach their storage (an object store, a remote cache) over a network link of about 1 Gbit/s per worker.  This
puts the same server behind such a link, with the kernel's own network stack and shaping (as Mininet-style
testbeds do), for ``bench_optimizations.py --remote-link RATE``.  Not emulated in Python: every byte crosses a
real TCP connection and a real shaped device.  Needs root, ``ip`` and ``tc`` (iproute2); Linux only.

The link is full duplex (one shaper per direction): uploads and downloads do not share a rate, as on a network.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import redis

from executor.server.binary import find_server_binary, server_command

#: the namespace, the host's end of the pair, the namespace's end, and their addresses
NAMESPACE, HOST_END, STORE_END = "planlab-store", "plstore-h", "plstore-s"
HOST_ADDRESS, STORE_ADDRESS = "10.77.0.1", "10.77.0.2"
PORT = 6390
#: a rate as ``tc`` reads one: a number and a unit (``1gbit``, ``500mbit``, ``100mbps``)
_RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")


class RemoteLinkError(RuntimeError):
    """The shaped link cannot be set up here (a one-line reason and the fix)."""


def check_rate(rate: str) -> str:
    """``rate`` if ``tc`` reads it, else a :class:`RemoteLinkError` naming the fix."""
    if not _RATE.match(rate.strip().lower()):
        raise RemoteLinkError(f"bad link rate {rate!r}: give a number and a unit as tc reads it, e.g. 1gbit or 500mbit")
    return rate.strip().lower()


def setup_commands(rate: str) -> list[list[str]]:
    """The commands that make the namespace, the veth pair, their addresses and one shaper per direction."""
    rate = check_rate(rate)
    shaper = ["root", "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"]
    inside = ["ip", "netns", "exec", NAMESPACE]
    return [["ip", "netns", "add", NAMESPACE],
            ["ip", "link", "add", HOST_END, "type", "veth", "peer", "name", STORE_END],
            ["ip", "link", "set", STORE_END, "netns", NAMESPACE],
            ["ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", HOST_END],
            ["ip", "link", "set", HOST_END, "up"],
            [*inside, "ip", "addr", "add", f"{STORE_ADDRESS}/24", "dev", STORE_END],
            [*inside, "ip", "link", "set", STORE_END, "up"],
            [*inside, "ip", "link", "set", "lo", "up"],
            ["tc", "qdisc", "add", "dev", HOST_END, *shaper],               # host -> store: uploads
            [*inside, "tc", "qdisc", "add", "dev", STORE_END, *shaper]]     # store -> host: downloads


def teardown_commands() -> list[list[str]]:
    """Deleting the namespace deletes its end of the pair, and with it the host's."""
    return [["ip", "netns", "delete", NAMESPACE], ["ip", "link", "delete", HOST_END]]


def _missing() -> str | None:
    if os.name != "posix" or not os.path.isdir("/proc/self/ns"):
        return "a shaped link needs Linux network namespaces"
    if os.geteuid() != 0:
        return "a shaped link needs root (network namespaces and tc): run the benchmark as root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"a shaped link needs {tool!r}: install iproute2"
    return None


@contextmanager
def remote_store(rate: str = "1gbit") -> Iterator[str]:
    """A password-protected server behind a link shaped to ``rate`` each way; yields its ``redis://`` URL.

    Everything it made (the namespace, the pair, the server and its folder) is removed on exit, also on error.
    """
    check_rate(rate)
    reason = _missing()
    if reason:
        raise RemoteLinkError(reason)
    for command in teardown_commands():      # a namespace an interrupted run left
        subprocess.run(command, capture_output=True)
    password = secrets.token_hex(16)
    folder = tempfile.mkdtemp(prefix="planlab-remote-")
    server = None
    try:
        for command in setup_commands(rate):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise RemoteLinkError(f"{' '.join(command)} failed: {done.stderr.strip()}")
        args = server_command(find_server_binary(), folder, os.path.join(folder, "server.sock"), port=PORT,
                              bind=STORE_ADDRESS, password=password, config={})
        server = subprocess.Popen(["ip", "netns", "exec", NAMESPACE, *args], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        url = f"redis://:{password}@{STORE_ADDRESS}:{PORT}/0"
        _wait_for(url, server)
        yield url
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for command in teardown_commands():
            subprocess.run(command, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(url: str, server: subprocess.Popen, timeout_s: float = 10.0) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1.0)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if server.poll() is not None:
                raise RemoteLinkError(f"the server behind the link exited ({server.returncode}) before it answered")
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise RemoteLinkError(f"the server behind the link did not answer within {timeout_s:g} s") \
                        from None
                time.sleep(0.05)
    finally:
        client.close()


__all__ = ["RemoteLinkError", "check_rate", "remote_store", "setup_commands", "teardown_commands"]
