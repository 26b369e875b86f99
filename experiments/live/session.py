"""The command line's side of the live view: the flags, the server's lifetime, the browser, the predictions.

``planlab execute ... --live`` and ``planlab run CONFIG --live`` call :func:`live_session`
around their runs; it binds the port first (a port in use is one line and exit 2
before anything runs), prints the address on stderr, opens the user's browser when
there is a graphical one (never a console browser, never under ``CI`` or
``--no-browser``), and when the command is done keeps serving until a page has been
sent the final state (at once when a page was open during the run; at most
``--live-hold`` seconds otherwise), so a page opened late still shows the run's end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any, Iterator

from planning.errors import PlanlabError

if TYPE_CHECKING:   # the hub (and the executor it reads) is imported only when a view is asked for
    from experiments.live.hub import LiveHub

__all__ = ["add_live_arguments", "live_session", "open_browser", "simulated_at_sla", "LIVE_METRICS"]

#: The metrics upload policy of a watched run when the user names none: rows reach the page within a second
#: (they ride in a completion's round trip; see executor.settings.MetricsPolicy).
LIVE_METRICS = "seconds:1"
#: How long a finished command keeps serving, by default, until a page has shown the run's end.
HOLD_S = 10.0


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--live", action="store_true",
                   help="serve a live view of the run in the browser (address printed on stderr)")
    p.add_argument("--live-port", type=int, default=0, metavar="PORT",
                   help="with --live: the loopback port to serve on (default 0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="with --live: print the address, do not open a browser")
    p.add_argument("--live-hold", type=float, default=HOLD_S, metavar="S",
                   help=f"with --live: after the run, keep serving until a page has shown its end, at most S seconds "
                        f"(default {HOLD_S:g}; a page open during the run gets it at once)")


@contextlib.contextmanager
def live_session(args: argparse.Namespace) -> Iterator["LiveHub | None"]:
    """A hub served on a loopback port while the command runs (None without ``--live``)."""
    if not getattr(args, "live", False):
        yield None
        return
    from experiments.live.hub import LiveHub
    from experiments.live.server import LiveServer

    hub = LiveHub()
    server = LiveServer(hub, args.live_port).start()
    print(f"live view: {server.url}", file=sys.stderr, flush=True)
    open_browser(server.url, disabled=args.no_browser)
    try:
        yield hub
    finally:
        if not hub.delivered() and args.live_hold > 0:
            print(f"live view: the run is over; serving its end at {server.url} until a page shows it, "
                  f"at most {args.live_hold:g} s (Ctrl-C to stop)", file=sys.stderr, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                hub.wait_delivered(args.live_hold)
        server.close()


def open_browser(url: str, disabled: bool = False) -> bool:
    """Open ``url`` in a graphical browser when there is one (not under CI, not on a console-only machine)."""
    if disabled or os.environ.get("CI") or os.environ.get("PLANLAB_NO_BROWSER"):
        return False
    graphical = sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not graphical:
        return False   # webbrowser would pick a console browser (lynx, w3m) and take over the terminal
    import webbrowser

    try:
        return bool(webbrowser.open(url, new=2))
    except webbrowser.Error:
        return False


def simulated_at_sla(workflow: Any, plan: Any, cost_model: Any, sla: Any, protocol: Any = None,
                     replications: int = 100) -> float | None:
    """The simulator's makespan at the SLA, as the runner computes it: deterministic, or Monte Carlo for a percentile.

    Computed before the run is submitted, so it costs the run nothing; None (with a note)
    when the simulator cannot run this plan.
    """
    from simulator import monte_carlo, simulate

    options = {"protocol": protocol} if protocol is not None else {}
    try:
        if sla.kind == "quantile":
            result = monte_carlo(workflow, plan, cost_model, replications=replications, seed=0, processes=1, **options)
            return float(result.summary(sla)["makespan_s"])
        return float(simulate(workflow, plan, cost_model, **options).makespan_s)
    except PlanlabError as exc:
        print(f"note: the live view shows no simulated makespan: {exc.one_line()}", file=sys.stderr)
        return None
