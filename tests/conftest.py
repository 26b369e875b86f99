"""Test-session set-up shared by every test module."""

from __future__ import annotations

import signal

# A shell without job control starts a background command with SIGINT ignored (``cmd &`` in a script, some CI
# runners), and Python then installs no KeyboardInterrupt handler - and every process the tests start inherits
# the ignore.  The Ctrl-C tests need the handler a terminal gives, so the session restores it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
