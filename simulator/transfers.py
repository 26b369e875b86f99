"""Storage transfers of a simulated run: parallel moves through the stager and the shared link, and the client's fetch.

A group of transfers through the :class:`~simulator.storage.SharedLink` is one
wake-up, when its last transfer completes.  A transfer's latency (not shared) is
added after its bytes have gone through the link, which leaves an uncontended
transfer's time unchanged and costs no event.

On a shared host (``Platform.host_cores``) a transfer is also CPU work on the host's
cores beside the executions: the worker's end and the server's copy the bytes
(:func:`simulator.quota.cpu_job`, ``Platform.fetch_server_s_per_byte + fetch_thread_s_per_byte`` per byte
fetched, the ``upload_*`` pair per byte uploaded).  Nothing waits for it - the transfer's time is the
link's - but it takes its share of the cores, so the tasks running meanwhile on other
workers slow down, whether the transfer is a worker's own (foreground: :func:`move`
charges it) or a background one's (pre-load, delayed I/O: :mod:`simulator.quota`
charges it, the worker's thread inside its worker's quota, a niced upload at its weight).  Issue 17: a 32 MB upload to a new key took
29 ms of CPU (7 ms the client's, 22 ms the server's, load 6) in its 56 ms; with the
foreground ones free, the simulated fan-large base ran its long branch beside idle
cores while the small branches uploaded, and delayed I/O (which moves those uploads
into the background, where they were charged) looked 5 % slower where the real runs
were not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator

from simulator.draws import RatioPool
from simulator.loop import Coroutine, spawn
from simulator.quota import cpu_job

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


def download_scale(platform: Any) -> float:
    """The link's bytes per byte downloaded: ``storage_bandwidth_Bps / download_bandwidth_Bps`` (1 when the platform
    gives downloads no rate of their own, or the link is free).  A download then moves at its own rate alone and
    takes its share of the link in proportion to its time on it (the link's processor sharing, weighted)."""
    down, link = platform.download_bandwidth_Bps, platform.storage_bandwidth_Bps
    if down <= 0.0 or down == link or not math.isfinite(link):
        return 1.0
    return link / down


def large_extra_s(platform: Any, nbytes: float, download: bool) -> float:
    """Seconds a transfer of ``nbytes`` (one call: a task's inputs fetched together, or one output) takes beyond the
    link's time: its bytes past ``Platform.large_transfer_bytes`` at the large rate of its direction (0 below it).

    >>> from simulator.platform import Platform
    >>> p = Platform(large_transfer_bytes=32e6, large_download_s_per_byte=2e-9, large_upload_s_per_byte=1e-9)
    >>> round(large_extra_s(p, 64e6, True), 12), round(large_extra_s(p, 64e6, False), 12), large_extra_s(p, 10e6, True)
    (0.064, 0.032, 0.0)
    """
    beyond = nbytes - platform.large_transfer_bytes
    if beyond <= 0.0:
        return 0.0
    return beyond * (platform.large_download_s_per_byte if download else platform.large_upload_s_per_byte)


def plain_transfers(platform: Any) -> bool:
    """Whether every byte moves at the link's one rate (no download rate of its own, no large-transfer cost) through
    the processor-sharing link (``storage_first_come`` 0: a :class:`~simulator.storage.SharedLink`), one for both
    directions (``storage_duplex`` 0): the condition
    of the loops that inline the link (:mod:`simulator.fast_loop`, ``worker_loop.link_steps``)."""
    large = math.isfinite(platform.large_transfer_bytes) and (platform.large_download_s_per_byte > 0.0
                                                              or platform.large_upload_s_per_byte > 0.0)
    return (download_scale(platform) == 1.0 and not large and platform.storage_first_come == 0.0
            and not platform.storage_duplex)


def move(run: "Run", sizes: list[float], pool: RatioPool, me: Coroutine, then: Any = None,
         charged: bool = False) -> Iterator[float | None]:
    """Transfers in parallel through the serial stager and the shared link; returns ``(end, at_then)``.

    The transfers through the link are one group with one completion event; with
    ``then`` (as :meth:`SharedLink.transfers` takes it) that event resumes the caller
    at that later time instead (``at_then`` is True), saving the caller's own timeout.
    On a shared host their CPU runs beside (:func:`simulator.quota.cpu_job`) unless the caller
    ``charged`` it already (a background transfer, at its own weight).
    """
    env = run.env
    if run.cpu is not None and not charged:
        nbytes = sum(s for s in sizes if s > 0)
        if nbytes > 0:
            platform = run.platform
            per_byte = (platform.upload_server_s_per_byte + platform.upload_thread_s_per_byte if pool is run.up
                        else platform.fetch_server_s_per_byte + platform.fetch_thread_s_per_byte)
            spawn(env, cpu_job, run, nbytes * per_byte, 1.0, me, 1.0)
    if run.stage_rate > 0:   # the serial stager (simulator.staging): a rate per kind of bytes
        end = run.stager.serve(env._now, sizes, pool is run.up)
        if end > env._now:
            yield end - env._now
    link, latency = run.down_link if pool is run.down else run.link, run.platform.storage_latency_s
    end = env._now
    if link is not None:
        ratios = [pool.next() for s in sizes if s > 0.0]
        if not ratios:
            return end, False
        scaled = [s * r for s, r in zip([s for s in sizes if s > 0.0], ratios)]
        if pool is run.down and run.down_scale != 1.0:   # a download's own rate (Platform.download_bandwidth_Bps)
            scaled = [s * run.down_scale for s in scaled]
        extra = 0.0 if run.plain_transfers else large_extra_s(run.platform, sum(s for s in sizes if s > 0.0),
                                                               pool is run.down)
        link.transfers(scaled, [latency * r + extra for r in ratios], end, then, me)
        end = yield
        return end, then is not None
    extra = 0.0 if run.plain_transfers else large_extra_s(run.platform, sum(s for s in sizes if s > 0.0),
                                                           pool is run.down)
    for s in sizes:
        if s <= 0.0:
            continue
        r = pool.next()
        if env._now + latency * r + extra > end:
            end = env._now + latency * r + extra
    return end, False


def client_fetch(run: "Run", i: int, t: float) -> None:
    """The client downloads a sink's result; the makespan is when it holds the last one."""
    nbytes = run.model.sink_bytes[i]
    if nbytes <= 0.0:
        run.makespan = max(run.makespan, t)
        return
    r = run.down.next()
    latency = run.platform.storage_latency_s * r
    if run.link is None:
        run.makespan = max(run.makespan, t + latency)
        return
    # the group's value is when the client holds the result: the bytes' completion plus the latency
    run.down_link.transfer_one(nbytes * r * run.down_scale, latency, None, run.held)
