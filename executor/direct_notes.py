"""Same-host direct notes: a completion also hands its notification straight to the notified worker's process.

On a hop between two workers (a chain whose edges cross them) the notified worker
normally learns of its task only when the server has run the completion and
answered its blocking pop: the server's step - and, on a busy host, the wake-up
of the server's process - lies on the critical path before the next task can
start.  Here the completing worker, once its completion is written to the
server, also sends the same sealed note as a datagram to a Unix socket the
notified worker's process listens on (an abstract name derived from the run's
key and the logical worker: nothing on disk to clean up, and a socket of that name
exists only on this host, so a worker elsewhere is simply not reached).  The
notified worker, whose pop is still outstanding, may then run the task at once,
*speculatively*, while the server records the completion in parallel.  Only with
``ExecutorSettings.direct_notes`` (off by default) and while the workers spin
(:func:`executor.worker.takes_direct_notes`).

Abstract names carry no permissions: the name is an HMAC of the worker under the
run's key, so a process without the deployment secret can neither predict it nor
forge a note.  What is left: a local process that saw a name bound
(``/proc/net/unix``) and binds it after that worker's process died would receive the
notes sent to it (the outputs of at most ``inline_output_bytes`` that ride in them;
never code, and nothing it could make a worker run: a note it sent back fails
authentication).

Redis stays the record; a direct note changes nothing that is committed
(:meth:`executor.worker._LogicalWorker._confirm_direct`).  Recovery argument:

* The notified worker commits nothing of a task it ran on a direct note until
  the pop outstanding on its connection has returned that task's note from its
  inbox - which only the parent's committed completion (or, after the parent's
  death, its re-run's) puts there.  So every commit follows its parents' commits
  in the server's order, exactly as without direct notes.
* When the note from the inbox differs from the direct one (the parent's process
  died before its completion was recorded and a re-run committed the task again,
  possibly with another output), the speculative result is discarded and the
  task runs again on the recorded note's inputs (a task with side effects then
  runs twice, as a task re-run after a death does).
* When the notified worker dies after running a task speculatively, it has
  committed nothing of it: its re-run recovers from the record as before.
* A datagram is authenticated (the run's HMAC seal) before it is used; a forged,
  stale (another task's) or undeliverable one is dropped, and the note from the
  inbox is used as without direct notes.
"""

from __future__ import annotations

import socket
from typing import Iterator

from executor.auth import MAC_BYTES, RunSealer

__all__ = ["DirectNotes", "note_address", "MAX_NOTE_BYTES"]

#: Notes larger than this go through the server only (a datagram of up to ~200 KB fits a Unix socket's
#: default buffer; a note carries at most ``inline_output_bytes`` of output, 4 KiB by default).
MAX_NOTE_BYTES = 64 * 1024


def note_address(sealer: RunSealer, worker: str) -> bytes:
    """The abstract Unix socket name of ``worker``'s process in the sealer's run: an HMAC under the run's key,
    which only holders of the deployment secret can compute (and short: a name fits 107 bytes)."""
    tag = sealer.seal(b"direct-note-address", worker.encode())[:MAC_BYTES]
    return b"\0planlab-note-" + tag[:16].hex().encode()


class DirectNotes:
    """One logical worker's datagram socket: receives its direct notes and sends others'.

    :meth:`listen` binds the worker's own name (None when the name is taken, e.g. by a process
    of an earlier generation that still lives: that worker then learns of its tasks through the
    server only).  Sends never block: a note no one listens for, or that finds the receiver's
    queue full, is dropped (the server delivers it anyway).
    """

    def __init__(self, sealer: RunSealer, sock: socket.socket) -> None:
        self.sealer = sealer
        self.sock = sock
        self._addresses: dict[str, bytes] = {}
        self.sent = self.received = 0   # counts, for tests and measurements

    @classmethod
    def listen(cls, sealer: RunSealer, worker: str) -> DirectNotes | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.bind(note_address(sealer, worker))
        except OSError:
            sock.close()
            return None
        return cls(sealer, sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, worker: str, note: bytes) -> bool:
        """Send ``note`` to ``worker``'s process when it listens on this host; whether it was sent."""
        if len(note) > MAX_NOTE_BYTES:
            return False
        address = self._addresses.get(worker)
        if address is None:
            address = self._addresses[worker] = note_address(self.sealer, worker)
        try:
            self.sock.sendto(note, address)
        except OSError:   # nobody listens (another host, not started yet, finished), or its queue is full
            return False
        self.sent += 1
        return True

    def take(self) -> Iterator[bytes]:
        """The datagrams received so far, one ``recv`` each as the caller asks for the next (without waiting):
        a caller that stops at the note it wanted leaves the rest queued, saving the ``recv`` that finds none."""
        while True:
            try:
                note = self.sock.recv(MAX_NOTE_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            self.received += 1
            yield note

    def close(self) -> None:
        self.sock.close()
