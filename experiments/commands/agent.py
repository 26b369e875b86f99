"""``planlab agent --redis-url URL``: serve a run's workers on this host.

A launcher on this machine takes start invocations from the server's launch
queue (the ``--pool`` the client uses, ``default`` unless set) and runs the
workers as local processes with their profiles' limits, so several hosts share
one run.  The client's machine runs its own launcher too.  Stop with Ctrl-C.
Task code reaches the agent with cloudpickle: functions defined in the client's
script travel by value, functions of importable modules by name (install the
same packages here).
"""

from __future__ import annotations

import argparse
import sys

from executor.launcher import new_launcher_id, run_launcher
from executor.server import connect, redacted_url


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run a launcher serving executor workers on this host", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", required=True, help="the run's server: redis://:PASSWORD@HOST:PORT/DB")
    p.add_argument("--pool", default="default", help="launch queue to serve (the client's ExecutorSettings.pool)")
    p.add_argument("--id", help="launcher id (default: host-pid-random)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    client, _ = connect(args.redis_url)  # fail fast, with the fix, on a bad URL or password
    client.close()
    launcher_id = args.id or new_launcher_id()
    print(f"planlab agent {launcher_id} serving pool {args.pool!r} at {redacted_url(args.redis_url)}",
          file=sys.stderr, flush=True)
    try:
        run_launcher(args.redis_url, args.pool, launcher_id)
    except KeyboardInterrupt:
        pass
    return 0
