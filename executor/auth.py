"""Authenticated payloads: nothing read from the server is unpickled before its MAC is checked.

Anyone who can write to the coordination server could otherwise run code in
planlab: the launcher, the workers and the client all unpickle what they read
(start messages, specs, task code, results).  So every pickle the executor
writes is *sealed* - prefixed with an HMAC-SHA256 tag over a label (what the
payload is and for which run) and the bytes - and every read *opens* it,
comparing tags with :func:`hmac.compare_digest` before ``pickle.loads`` ever
sees the bytes.  A payload that fails the check raises :class:`Forged` and is
never unpickled.

The key is a *deployment secret* that never travels through the server: an
:class:`executor.Executor` makes a random one (its local launcher and workers
are forked from it and inherit it), or reads ``PLANLAB_SECRET`` /
``PLANLAB_SECRET_FILE`` so that ``planlab agent`` processes on other hosts share
it.  Each run uses its own key derived from the secret and the run id, so a
payload cannot be replayed into another run; the label binds it to its key name
(an output cannot be swapped for another task's).

Cost: one HMAC per message (~1.5 us for a notification; ~0.4 ms per MiB of a
result, on both sides).  The run key's inner and outer pads are hashed once per
:class:`RunSealer` (RFC 2104), so a message costs two hash copies and updates:
``hmac.digest`` sets the key up again each call (~4.4 us against ~1.5 us), and a
task of a chain whose edges cross workers seals or opens four messages on the
critical path (its notification, its input, its output, its child's notification).
Replay outputs (raw bytes, never unpickled) are not sealed.  A sealed output riding inside a
notification is covered by the notification's own tag, checked when the note is opened, so its
reader does not check it a second time (:meth:`RunSealer.vouched`; ~1.5-3 us per hop of such a chain).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

from planning.errors import ExecutionError

__all__ = ["Forged", "RunSealer", "deployment_secret", "MAC_BYTES"]

MAC_BYTES = 32
#: SHA-256's block size and HMAC's pad bytes (RFC 2104), as translation tables
_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
#: Environment variables that carry a deployment secret to agents and clients.
SECRET_ENV = "PLANLAB_SECRET"
SECRET_FILE_ENV = "PLANLAB_SECRET_FILE"
#: Shortest accepted secret (bytes): 128 bits.
MIN_SECRET_BYTES = 16


class Forged(ExecutionError):
    """A payload read from the server failed authentication (wrong secret, or written by someone else)."""


def _secret_from_text(text: str, where: str) -> bytes:
    data = text.strip().encode()
    if len(data) < MIN_SECRET_BYTES:
        raise ExecutionError(f"the secret in {where} is shorter than {MIN_SECRET_BYTES} bytes",
                             "use a long random secret, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`")
    return data


def deployment_secret(explicit: bytes | str | None = None, secret_file: str | os.PathLike[str] | None = None,
                      *, generate: bool = True) -> bytes | None:
    """The secret: ``explicit``, else ``secret_file``, else ``$PLANLAB_SECRET(_FILE)``, else a random one.

    ``generate=False`` returns None instead of inventing one (an agent must share its client's).
    """
    if explicit is not None:
        return _secret_from_text(explicit if isinstance(explicit, str) else explicit.decode("latin-1"), "the argument")
    path = secret_file or os.environ.get(SECRET_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ExecutionError(f"cannot read the secret file {str(path)!r} ({exc.__class__.__name__})",
                                 "give a readable text file holding the deployment secret") from None
        return _secret_from_text(text, f"file {str(path)!r}")
    if os.environ.get(SECRET_ENV):
        return _secret_from_text(os.environ[SECRET_ENV], f"${SECRET_ENV}")
    return secrets.token_bytes(32) if generate else None


class RunSealer:
    """Seals and opens one run's payloads (a key derived from the deployment secret and the run id)."""

    __slots__ = ("run_id", "_key", "_inner", "_outer")

    def __init__(self, secret: bytes, run_id: str) -> None:
        self.run_id = run_id
        self._key = hmac.digest(secret, b"planlab-run\0" + run_id.encode(), "sha256")
        self._pads()

    def _pads(self) -> None:
        """SHA-256 states after the key's inner and outer pads: an HMAC is then two copies and updates."""
        key = self._key.ljust(_BLOCK, b"\0")   # 32 bytes: shorter than SHA-256's block, used as is
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __getstate__(self) -> tuple[str, bytes]:
        return self.run_id, self._key      # hash states do not pickle: rebuilt from the key

    def __setstate__(self, state: tuple[str, bytes]) -> None:
        self.run_id, self._key = state
        self._pads()

    def _tag(self, label: bytes, data: bytes | bytearray | memoryview) -> bytes:
        """HMAC-SHA256(run key, label NUL data), the same tag ``hmac.digest`` gives."""
        inner = self._inner.copy()
        inner.update(label + b"\0")
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def seal(self, label: bytes, data: bytes) -> bytes:
        """``tag || data``."""
        return self._tag(label, data) + data

    def open(self, label: bytes, blob: bytes | bytearray | memoryview) -> memoryview:
        """The payload of ``blob`` (a view, no copy), or :class:`Forged`."""
        view = memoryview(blob)
        if len(view) < MAC_BYTES or not hmac.compare_digest(self._tag(label, view[MAC_BYTES:]), view[:MAC_BYTES]):
            raise Forged(f"a payload ({label.decode(errors='replace')}) of run {self.run_id} read from the server "
                         "failed authentication and was not unpickled",
                         "someone else wrote to the server, or the agent's secret differs from the client's "
                         f"(share it with ${SECRET_ENV} or ${SECRET_FILE_ENV}); protect the server with a password")
        return view[MAC_BYTES:]

    @staticmethod
    def vouched(blob: bytes | bytearray | memoryview) -> memoryview:
        """The payload of a sealed blob that arrived *inside* a message whose own tag checked out (a note's
        inline output): that tag already covers every byte of it, so its own is not computed again.

        Only for bytes taken from an opened message - never for bytes read from the server on their
        own (those go through :meth:`open`).  A blob too short to hold a tag cannot come from
        :meth:`seal` and is refused all the same.
        """
        view = memoryview(blob)
        if len(view) < MAC_BYTES:
            raise Forged("a payload vouched for by its message is shorter than a seal's tag",
                         "report this as an executor bug: only sealed outputs ride inside notifications")
        return view[MAC_BYTES:]

    def dumps(self, label: bytes, obj: Any) -> bytes:
        return self.seal(label, pickle.dumps(obj, protocol=5))

    def loads(self, label: bytes, blob: bytes | bytearray | memoryview) -> Any:
        """Unpickle ``blob`` only after its tag checked out."""
        return pickle.loads(self.open(label, blob))
