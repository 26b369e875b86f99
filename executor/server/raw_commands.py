"""One command over the server's unix socket without a client library: readiness PING and SHUTDOWN.

Measured (``FACTS.md``): the wheels' wrapper classes poll for readiness every
100 ms, while the binary itself answers in ~5 ms (redis 6.2) to ~36 ms (valkey
9); so the embedded server is polled with a raw ``PING`` every ~1 ms and
stopped with ``SHUTDOWN NOSAVE`` (SIGTERM can take ~100 ms).
"""

from __future__ import annotations

import socket

__all__ = ["raw_command"]


def _resp(*args: str) -> bytes:
    """Encode one command in RESP, so readiness probes need no client library."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def raw_command(socket_path: str, *args: str, password: str | None, timeout: float) -> bytes:
    """Send one command (after AUTH if needed) over the unix socket; return the last reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        payload = (_resp("AUTH", password) if password else b"") + _resp(*args)
        s.sendall(payload)
        replies_wanted = 2 if password else 1
        buf = b""
        while buf.count(b"\r\n") < replies_wanted:
            chunk = s.recv(4096)
            if not chunk:  # e.g. SHUTDOWN closes the connection without a reply
                break
            buf += chunk
        lines = [ln for ln in buf.split(b"\r\n") if ln]
        return lines[-1] if lines else b""
