"""A Ctrl-C while the executor forks its launcher is held back and raised right after, never lost."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from executor.client import _ctrl_c_deferred


def test_a_ctrl_c_during_the_fork_arrives_after_it():
    assert threading.current_thread() is threading.main_thread()
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_deferred(True):
            os.kill(os.getpid(), signal.SIGINT)      # lands while "forking": held back...
            time.sleep(0.05)                          # (Python runs its handler at the next bytecode)
            reached_the_end = True
    assert reached_the_end                            # ...and raised only once the fork is done
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # the usual handler is back


def test_it_holds_with_other_threads_running():
    """With other threads alive the kernel may hand the signal to any of them; Python still runs the (deferring)
    handler in the main thread, so it is held back all the same."""
    other = threading.Thread(target=time.sleep, args=(0.5,), daemon=True)
    other.start()
    test_a_ctrl_c_during_the_fork_arrives_after_it()
    other.join()
