"""``planlab agent --redis-url URL``: serve a run's workers on this host.

A launcher on this machine takes start invocations from the server's launch
queue (the ``--pool`` the client uses, ``default`` unless set) and runs the
workers as local processes with their profiles' limits, so several hosts share
one run.  The client's machine runs its own launcher too.  Stop with Ctrl-C.
Task code reaches the agent with cloudpickle: functions defined in the client's
script travel by value, functions of importable modules by name (install the
same packages here).

Nothing read from the server is unpickled before it is authenticated with the
deployment secret the clients use (``--secret-file``, or ``$PLANLAB_SECRET`` /
``$PLANLAB_SECRET_FILE``), and a server on another host must have a password
(``--insecure`` overrides on a trusted network).
"""

from __future__ import annotations

import argparse
import sys

from planning.errors import ExecutionError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run a launcher serving executor workers on this host", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", required=True, help="the run's server: redis://:PASSWORD@HOST:PORT/DB")
    p.add_argument("--pool", default="default", help="launch queue to serve (the client's ExecutorSettings.pool)")
    p.add_argument("--id", help="launcher id (default: host-pid-random)")
    p.add_argument("--secret-file", help="file holding the deployment secret (default: $PLANLAB_SECRET(_FILE))")
    p.add_argument("--insecure", action="store_true",
                   help="accept a server on another host without a password (trusted networks only)")
    p.set_defaults(handler=run, stops_on_ctrl_c=True)   # Ctrl-C is how it is stopped: exit 0, not 130


def run(args: argparse.Namespace) -> int:
    from executor.auth import deployment_secret
    from executor.launcher import new_launcher_id, run_launcher
    from executor.server import check_url_security, connect, redacted_url

    check_url_security(args.redis_url, insecure=args.insecure)
    if args.id is not None and (not args.id or any(c in args.id for c in " {}:*")):
        raise ExecutionError(f"--id {args.id!r} is not a valid launcher id", "use letters, digits, '-' and '_'")
    client, _ = connect(args.redis_url)  # fail fast, with the fix, on a bad URL or password
    client.close()
    secret = deployment_secret(secret_file=args.secret_file, generate=False)
    if secret is None:
        raise ExecutionError("planlab agent needs the deployment secret its clients use",
                             "pass --secret-file PATH, or set $PLANLAB_SECRET or $PLANLAB_SECRET_FILE")
    launcher_id = args.id or new_launcher_id()
    print(f"planlab agent {launcher_id} serving pool {args.pool!r} at {redacted_url(args.redis_url)}",
          file=sys.stderr, flush=True)
    try:
        run_launcher(args.redis_url, secret, args.pool, launcher_id, serve_pool=True)
    except KeyboardInterrupt:
        pass
    return 0
