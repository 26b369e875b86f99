"""The private folder of each embedded server, and the sweep of folders a killed client left.

An embedded server keeps its unix socket and its logs in a fresh temporary
folder that records its client's pid (``owner.pid``).  A client killed before
``stop()`` leaves its folder behind (its server died with it: parent-death
signal); every embedded start first removes the folders whose owner is gone, so
a killed client's folder lasts until the next start at most.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from executor.pids import pid_alive

__all__ = ["make_server_folder", "sweep_stale_tmpdirs", "SOCKET_NAME"]

_TMP_PREFIX = "planlab-redis-"
_OWNER_FILE = "owner.pid"
SOCKET_NAME = "redis.sock"
# sun_path is 108 bytes on Linux; keep a margin for the file name.
_MAX_SOCKET_PATH = 100


def sweep_stale_tmpdirs() -> list[str]:
    """Remove the folders of embedded servers whose client was killed (no ``stop()`` ran)."""
    removed = []
    for root in {tempfile.gettempdir(), "/tmp"}:
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                if not entry.name.startswith(_TMP_PREFIX) or not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    owner = int(Path(entry.path, _OWNER_FILE).read_text().strip())
                except (OSError, ValueError):
                    continue   # not ours to judge (an older planlab, or still being created)
                if not pid_alive(owner):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.path)
    return removed


def make_server_folder() -> str:
    """A new folder owned by this process (stale ones swept first), short enough for a unix socket path."""
    sweep_stale_tmpdirs()
    tmpdir = tempfile.mkdtemp(prefix=_TMP_PREFIX)
    if len(tmpdir) + len("/" + SOCKET_NAME) > _MAX_SOCKET_PATH:
        # A long TMPDIR would overflow the unix socket path limit (108 bytes).
        os.rmdir(tmpdir)
        tmpdir = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir="/tmp")
    Path(tmpdir, _OWNER_FILE).write_text(str(os.getpid()))
    return tmpdir
