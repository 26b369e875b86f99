"""Background transfers beside a CPU-bound task: a short GIL switch interval while they run (executor/switching)."""

from __future__ import annotations

import queue
import socket
import struct
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import redis

from executor import switching
from executor.switching import TRANSFER_SWITCH_S, fast_switching
from executor.wire import Wire, _receive_bulk
from executor.worker_delayed import _Uploader
from executor.worker_preload import _Preload


def test_the_interval_is_short_inside_and_restored_after_the_last_transfer_leaves() -> None:
    before = sys.getswitchinterval()
    with fast_switching():
        assert sys.getswitchinterval() == pytest.approx(TRANSFER_SWITCH_S)
        with fast_switching():                        # a second transfer thread of the same process
            assert sys.getswitchinterval() == pytest.approx(TRANSFER_SWITCH_S)
        assert sys.getswitchinterval() == pytest.approx(TRANSFER_SWITCH_S)   # the first is still inside
    assert sys.getswitchinterval() == before and switching._active == 0


def test_an_interval_already_shorter_is_kept_and_an_error_still_restores() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.0001)
        with fast_switching():
            assert sys.getswitchinterval() == pytest.approx(0.0001)
        try:
            with fast_switching():
                raise ValueError("transfer failed")
        except ValueError:
            pass
        assert sys.getswitchinterval() == pytest.approx(0.0001) and switching._active == 0
    finally:
        sys.setswitchinterval(before)


class _Wire:
    """Answers a pre-load thread's round trips like a server whose input is stored after ``wakes_before`` wake-ups
    (``None``: never); records the switch interval each round trip and each fetch ran under."""

    def __init__(self, wakes_before: int | None = 0) -> None:
        self.wakes_before = wakes_before
        self.calls: list[tuple[str, float]] = []
        self.fetched: list[float] = []
        self.blocked = threading.Event()
        self.unblock = threading.Event()

    def call(self, commands: list[tuple]) -> list:
        names = [c[0] for c in commands]
        self.calls.append((" ".join(names), sys.getswitchinterval()))
        if names[0] == "DEL":           # the thread's first round trip: its list emptied, then what is stored
            assert all(n == "EXISTS" for n in names[1:])
            return [0] + [int(self.wakes_before == 0)] * (len(commands) - 1)
        assert names == ["BLPOP"]
        pops = sum(1 for c, _ in self.calls if c == "BLPOP")
        if self.wakes_before is None:  # blocks until the worker's stop sentinel
            self.blocked.set()
            self.unblock.wait()
            return [(b"wake", b"")]
        return [(b"wake", b"a" if pops >= self.wakes_before else b"other")]

    def get_bulk(self, command: tuple) -> bytearray:
        self.fetched.append(sys.getswitchinterval())
        assert command[0] == "GETRANGE"
        return bytearray(b"x" * (command[3] - command[2] + 1))


def test_a_preload_thread_waits_and_fetches_under_the_short_interval_and_restores_it() -> None:
    wire, before = _Wire(wakes_before=2), sys.getswitchinterval()
    thread = _Preload(wire, [("a", "out:a", 3)], threading.Event(), "wake")   # type: ignore[arg-type]
    thread.start()
    thread.join()
    assert thread.error is None and thread.data == {"a": b"xxx"} and thread.complete
    # one look at what is stored, a wake-up for another task (ignored), then a's
    assert [c for c, _ in wire.calls] == ["DEL EXISTS", "BLPOP", "BLPOP"]
    assert all(s == pytest.approx(TRANSFER_SWITCH_S) for _, s in wire.calls)   # its waits too (switching)
    assert wire.fetched == [pytest.approx(TRANSFER_SWITCH_S)]
    assert sys.getswitchinterval() == before


def test_a_preload_thread_takes_an_input_stored_before_it_started_without_waiting() -> None:
    wire = _Wire(wakes_before=0)
    thread = _Preload(wire, [("a", "out:a", 3)], threading.Event(), "wake")   # type: ignore[arg-type]
    thread.start()
    thread.join()
    assert thread.complete and [c for c, _ in wire.calls] == ["DEL EXISTS"]


def test_a_preload_thread_stops_waiting_when_the_worker_gets_to_the_task() -> None:
    wire = _Wire(wakes_before=None)                       # the input never comes to the thread
    thread = _Preload(wire, [("a", "out:a", 3)], threading.Event(), "wake")   # type: ignore[arg-type]
    thread.start()
    wire.blocked.wait(timeout=10.0)
    thread.hurry.set()                                    # the worker fetches it itself now,
    wire.unblock.set()                                    # and its stop sentinel ends the thread's pop
    thread.join(timeout=5.0)
    assert not thread.is_alive() and thread.error is None
    assert thread.data == {} and not thread.complete and thread.start_s is None


class _CountingSocket:
    """A socket that counts its receives (the GIL hand-overs of a background transfer)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.receives = sock, 0

    def recv_into(self, *args):
        self.receives += 1
        return self.sock.recv_into(*args)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def test_a_whole_reply_is_received_in_one_call_and_the_socket_keeps_its_timeout() -> None:
    a, b = socket.socketpair()
    a.settimeout(5.0)
    payload = bytes(range(256)) * 4096 + b"\r\n"          # 1 MiB and the bulk string's CRLF

    def send_in_pieces() -> None:                          # four pieces with pauses: a chunked receive needs 4+
        for k in range(4):
            b.sendall(payload[k * len(payload) // 4:(k + 1) * len(payload) // 4])
            time.sleep(0.02)

    for whole in (True, False):
        counted = _CountingSocket(a)
        sender = threading.Thread(target=send_in_pieces)
        sender.start()
        body = _receive_bulk(counted, len(payload) - 2, memoryview(b""), whole)   # type: ignore[arg-type]
        sender.join()
        assert body == payload[:-2] and a.gettimeout() == 5.0
        assert (counted.receives == 1) if whole else (counted.receives >= 4)
    a.close()
    b.close()


def test_a_large_background_receive_goes_into_a_populated_mapping() -> None:
    # whole (a background thread's receive) and from POPULATE_MIN_BYTES on: a view of n bytes of an anonymous
    # mapping (its pages mapped in one call); a foreground or a small receive: a bytearray, as before
    import mmap
    import pickle

    from executor.wire import POPULATE_MIN_BYTES, _new_buffer

    obj = {"a": list(range(1000)), "blob": bytes(range(256)) * (POPULATE_MIN_BYTES // 256)}
    data = pickle.dumps(obj)
    for whole, size in ((True, len(data)), (False, len(data)), (True, POPULATE_MIN_BYTES // 2)):
        payload = (data + b"\r\n") if size == len(data) else bytes(size) + b"\r\n"
        a, b = socket.socketpair()
        sender = threading.Thread(target=b.sendall, args=(payload[3:],))
        sender.start()
        body = _receive_bulk(a, len(payload) - 2, memoryview(payload[:3]), whole)   # the header's read took 3
        sender.join()
        populated = whole and size >= POPULATE_MIN_BYTES and getattr(mmap, "MAP_POPULATE", None) is not None
        assert isinstance(body, memoryview if populated else bytearray) and len(body) == len(payload) - 2
        assert bytes(body) == payload[:-2]
        if size == len(data):
            assert pickle.loads(body) == obj              # a coded output decodes from the view as from bytes
        a.close()
        b.close()
    assert isinstance(_new_buffer(POPULATE_MIN_BYTES, True), (mmap.mmap, bytearray))
    assert isinstance(_new_buffer(POPULATE_MIN_BYTES, False), bytearray)


def test_a_background_wire_moves_large_values_intact() -> None:
    from executor.server import redis_endpoint

    with redis_endpoint(None) as ep:
        client = ep.client(socket_timeout=10.0)
        value = bytes(range(256)) * (2**20 // 64) + b"y"
        client.set("p:big", value)
        wire = Wire(client)
        wire.whole_transfers = True
        assert wire.get_bulk(("GET", "p:big")) == value
        assert wire.get_bulk(("GETRANGE", "p:big", 0, 2**20 - 1)) == value[:2**20]
        assert wire.call([("PING",)]) == [b"PONG"]          # in step after the whole receives
        assert wire.call([("SET", "p:sent", value)]) == [b"OK"]          # a whole send (delayed I/O's uploads)
        sock = wire.conn._sock    # its 10 s timeout kept: in Python, or moved to the kernel (Wire._kernel_timeouts)
        kernel = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("ll")))
        assert client.get("p:sent") == value and (sock.gettimeout() == 10.0 or (sock.gettimeout() is None
                                                                                 and kernel == (10, 0)))
        wire.close()
        fresh = Wire(client)                                   # a whole send connects first when it must
        fresh.whole_transfers = True
        assert fresh.call([("SET", "p:fresh", value)]) == [b"OK"] and client.strlen("p:fresh") == len(value)
        fresh.close()


class _RecordingQueue(queue.Queue):
    """The uploader's job queue, recording the switch interval in effect each time the thread waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.intervals: list[float] = []

    def get(self, *args, **kwargs):
        self.intervals.append(sys.getswitchinterval())
        return super().get(*args, **kwargs)


class _SendingWire:
    """The uploader's connection: records the interval each completion is sent under."""

    def __init__(self) -> None:
        self.intervals: list[float] = []

    def call(self, commands: list) -> list:
        self.intervals.append(sys.getswitchinterval())
        return [[0]]                      # another process holds the worker: the row is dropped (fenced)


def test_the_uploader_waits_for_its_jobs_and_sends_under_the_short_interval_and_restores_it() -> None:
    # Waiting in the queue it does not ask for the GIL (the task beside it runs as under the usual interval);
    # handed a job it gets the GIL within TRANSFER_SWITCH_S, not after the task's usual 5 ms (executor.switching).
    before = sys.getswitchinterval()
    owner = SimpleNamespace(protocol=SimpleNamespace(lazy_upload_yields=lambda w: False), worker="w")
    uploader = _Uploader(owner, redis.Redis(unix_socket_path="/nonexistent"))   # never connects: its wire is replaced
    uploader.jobs, uploader.wire = _RecordingQueue(), _SendingWire()            # type: ignore[assignment]
    uploader.start()
    uploader.jobs.put(("t", [], {}, False, None))
    uploader.jobs.put(None)
    uploader.join(timeout=5.0)
    assert not uploader.is_alive() and uploader.error is None
    assert uploader.jobs.intervals == [pytest.approx(TRANSFER_SWITCH_S)] * 2
    assert uploader.wire.intervals == [pytest.approx(TRANSFER_SWITCH_S)]
    assert sys.getswitchinterval() == before
