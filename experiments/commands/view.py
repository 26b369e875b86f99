"""``planlab view RESULTS_DIR``: the live view's page for finished runs, from their saved results.

RESULTS_DIR is a folder written by ``planlab run`` (every real run it made is saved
under ``runs/``) or by ``planlab execute --save-run DIR``.  The page shows each run
as ``--live`` showed it at its end: the DAG coloured by state, the per-worker Gantt of
the real run beside the plan, the makespan (the client's), starts and bytes moved.
Serves on a loopback port until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time



def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="serve the live view's page for finished runs (a results or saved-run folder)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="a folder written by 'planlab run' or 'planlab execute --save-run'")
    p.add_argument("--port", type=int, default=0, help="loopback port to serve on (default 0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    p.set_defaults(handler=run, stops_on_ctrl_c=True)   # Ctrl-C is how it is stopped: exit 0, not 130


def run(args: argparse.Namespace) -> int:
    from experiments.live.hub import LiveHub
    from experiments.live.saved import add_saved_runs
    from experiments.live.server import LiveServer
    from experiments.live.session import open_browser

    hub = LiveHub()
    count = add_saved_runs(hub, args.results)
    server = LiveServer(hub, args.port).start()
    print(f"{count} run(s) of {args.results} at {server.url} (Ctrl-C to stop)", flush=True)
    open_browser(server.url, disabled=args.no_browser)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.close()
    return 0
