"""The live view's HTTP server: a small Starlette app served by uvicorn on a loopback port, in a thread.

Routes: ``/`` (the page), ``/static/*`` (its script and style, shipped with
planlab: no CDN, no build step, works offline), ``/api/runs``, ``/api/plan?run=ID``
(a run's static part, fetched once), ``/api/state?run=ID`` (its current state) and
``/api/events?run=ID``, a server-sent event stream that sends the state each time it
changes (about once a second while a run goes on); without ``run`` the page follows
the newest run.

The socket is bound here, before anything runs, so a port in use is a one-line
error (exit 2) rather than a run that cannot be watched.  Starlette and uvicorn are
the ``live`` extra (``pip install 'planlab[live]'``); they are imported only when a
view is asked for.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import threading
import time
from pathlib import Path
from typing import Any

from experiments.live.hub import LiveHub
from planning.errors import PlanlabError

__all__ = ["LiveServer", "LiveViewError", "STATIC"]

STATIC = Path(__file__).resolve().parent / "static"
#: How often an event stream checks for a new version (the poller changes it about once a second).
STREAM_CHECK_S = 0.2
_stream_ids = itertools.count()


class LiveViewError(PlanlabError):
    """The live view cannot be served (port in use, missing extra)."""


class LiveServer:
    """Serve ``hub`` on ``host:port`` (0: a free port) until :meth:`close`."""

    def __init__(self, hub: LiveHub, port: int = 0, host: str = "127.0.0.1") -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> "LiveServer":
        uvicorn = _import_extra()
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(build_app(self.hub), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve(sockets=[sock])),
                                        name="planlab-live-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            sock.close()
            raise LiveViewError(f"the live view's server did not start on {self.url}",
                                "run again with PLANLAB_DEBUG=1 and report it")
        return self

    def close(self) -> None:
        """Stop the event streams, then the server (the pages keep what they last showed)."""
        self.hub.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _import_extra() -> Any:
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise LiveViewError(f"the live view needs the 'live' extra ({exc.name} is not installed)",
                            "pip install 'planlab[live]' (starlette and uvicorn)") from None
    return uvicorn


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise LiveViewError(f"port {port} is not a TCP port", "give a port between 1024 and 65535, or 0 for a free one")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LiveViewError(f"port {port} on {host} is in use",
                                "pick another with --live-port / --port, or 0 for a free one") from None
        raise LiveViewError(f"cannot listen on {host}:{port} ({exc.strerror})",
                            "pick another port (1024-65535), or 0 for a free one") from None
    sock.listen(64)
    sock.set_inheritable(False)
    return sock


def build_app(hub: LiveHub) -> Any:
    """The Starlette application over ``hub``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def json_text(text: str | None) -> Response:
        if text is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        return Response(text, media_type="application/json", headers={"Cache-Control": "no-store"})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def runs(request: Request) -> Response:
        return JSONResponse({"runs": hub.runs(), "newest": hub.newest})

    async def plan(request: Request) -> Response:
        return json_text(hub.plan_json(request.query_params.get("run")))

    async def state(request: Request) -> Response:
        snap = hub.snapshot(request.query_params.get("run"))
        return json_text(snap[2] if snap else None)

    async def events(request: Request) -> Response:
        return StreamingResponse(_stream(hub, request.query_params.get("run")), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return Starlette(routes=[Route("/", index), Route("/api/runs", runs), Route("/api/plan", plan),
                             Route("/api/state", state), Route("/api/events", events),
                             Mount("/static", app=StaticFiles(directory=STATIC), name="static")])


async def _stream(hub: LiveHub, run_id: str | None):
    """Server-sent events: the run's state whenever its version changes; a comment every 15 s keeps it open."""
    stream = next(_stream_ids)
    sent: tuple[str, int] | None = None
    quiet = 0.0
    try:
        yield "retry: 1000\n\n"
        while not hub.stopping:
            snap = hub.snapshot(run_id)
            if snap is not None and (snap[0], snap[1]) != sent:
                yield f"data: {snap[2]}\n\n"
                sent = (snap[0], snap[1])
                hub.stream_sent(stream, *sent)
                quiet = 0.0
            elif quiet >= 15.0:
                yield ": still here\n\n"
                quiet = 0.0
            await asyncio.sleep(STREAM_CHECK_S)
            quiet += STREAM_CHECK_S
    finally:
        hub.stream_closed(stream)
