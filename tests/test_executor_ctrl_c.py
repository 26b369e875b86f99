"""A Ctrl-C while the executor forks its launcher is held back and raised right after, never lost."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from executor.client import _ctrl_c_deferred


def test_a_ctrl_c_during_the_fork_arrives_after_it():
    assert threading.current_thread() is threading.main_thread()
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_deferred(True):
            os.kill(os.getpid(), signal.SIGINT)      # lands while "forking": held back...
            reached_the_end = True
    assert reached_the_end                            # ...and raised only once the fork is done
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())   # not left blocked
