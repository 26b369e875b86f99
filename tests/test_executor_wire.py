"""A worker's dedicated connection (executor.wire) and the round trips it carries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from executor import Executor, ExecutorSettings
from executor.plans import assigned_plan
from executor.server import redis_endpoint
from executor.wire import BIG_ARG_BYTES, Wire, pack, packed
from planning.sources.generators import generate
from planning.workflow import run_locally


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    with redis_endpoint(None) as ep:
        yield ep.client(socket_timeout=10.0)


def test_commands_pack_as_redis_py_packs_them_with_large_arguments_by_reference() -> None:
    big = bytes(BIG_ARG_BYTES + 1)
    cmds = [("SET", "pl:{r}:out:é", big, "PX", 5), ("BLPOP", "inbox", 1.5), ("LPOP", "inbox", 1000),
            ("EVALSHA", "ab12", 3, "k1", "k2", "k3", "", b"", "c1"), ("SET", "m", memoryview(b"abc")),
            ("SET", "n", bytearray(b"xy"))]
    chunks = pack(cmds)
    assert b"".join(chunks) == b"".join(redis.Connection().pack_commands(cmds))
    assert any(c is big for c in chunks)               # sent as it is, never copied into the command buffer
    with pytest.raises(TypeError):
        pack([("SET", "k", object())])


def test_a_command_packed_once_is_sent_as_it_is_and_owes_one_reply(client: redis.Redis) -> None:
    cmds = [("RPUSH", "w:p", b"x"), ("BLPOP", "w:p", 1.5), ("LPOP", "w:p", 1000)]
    mixed = [cmds[0], packed(cmds[1]), packed(cmds[2])]
    assert b"".join(pack(mixed)) == b"".join(redis.Connection().pack_commands(cmds))
    wire = Wire(client)
    wire.send(mixed)
    assert wire.pending == 3
    assert wire.read() == [1, [b"w:p", b"x"], None]


def test_a_large_value_round_trips_intact(client: redis.Redis) -> None:
    value = bytes(range(256)) * (3 * 2**20 // 256) + b"tail"
    wire = Wire(client)
    assert wire.call([("SET", "w:big", value), ("STRLEN", "w:big")]) == [b"OK", len(value)]
    assert wire.call([("GET", "w:big")]) == [value]
    client.delete("w:big")


def test_a_call_returns_the_raw_replies_in_order(client: redis.Redis) -> None:
    wire = Wire(client)
    assert wire.call([("SET", "w:a", b"xyz"), ("GET", "w:a"), ("GETRANGE", "w:a", 0, 1), ("EXISTS", "w:none"),
                      ("RPUSH", "w:l", b"1", b"2"), ("LPOP", "w:l", 10), ("LPOP", "w:l", 10)]) == \
        [b"OK", b"xyz", b"xy", 0, 2, [b"1", b"2"], None]
    assert wire.pending == 0
    client.delete("w:a")


def test_a_server_error_raises_after_every_reply_is_read(client: redis.Redis) -> None:
    wire = Wire(client)
    client.set("w:s", "not a list")
    with pytest.raises(redis.ResponseError):
        wire.call([("RPUSH", "w:s", b"x"), ("SET", "w:after", b"1")])
    assert client.get("w:after") == b"1"              # the command after the error still ran
    assert wire.call([("GET", "w:after")]) == [b"1"]   # and the connection is still in step
    client.delete("w:s", "w:after")


def test_a_blocking_pop_sent_with_other_commands_is_read_after_them(client: redis.Redis) -> None:
    wire = Wire(client)
    wire.send([("SET", "w:b", b"1"), ("BLPOP", "w:inbox", 5), ("LPOP", "w:inbox", 100)])
    assert wire.read(1) == [b"OK"]                     # answered before the pop is served
    client.rpush("w:inbox", b"n1", b"n2", b"n3")
    got, more = wire.read(2)
    assert got == [b"w:inbox", b"n1"] and more == [b"n2", b"n3"]
    assert wire.pending == 0
    wire.send([("BLPOP", "w:inbox", 5)])
    wire.reset()                                       # an unwanted pop: dropped with its connection
    assert wire.pending == 0 and wire.call([("GET", "w:b")]) == [b"1"]
    client.rpush("w:inbox", b"late")                   # not taken by the dropped pop
    assert client.lpop("w:inbox") == b"late"
    client.delete("w:b")


def test_alternating_chain_hands_over_every_task_and_times_each_upload() -> None:
    """Every task's completion also carries the worker's next wait: results, phases and cleanup stay as before."""
    wf = generate("deep_chain", length=40)
    ids = wf.task_ids
    plan = assigned_plan(wf, {t: f"w{i % 2}" for i, t in enumerate(ids)}, "large")
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        result = ex.run(wf, plan)
        left = {k.decode() for k in ex.client.scan_iter(match=f"pl:{{{result.meta['run_id']}}}:*")}
    assert result.results == {ids[-1]: run_locally(wf)[ids[-1]]}
    tasks = result.trace.validate().tasks.set_index("task_id").loc[ids]
    assert list(tasks["worker"]) == [f"w{i % 2}" for i in range(len(ids))]
    assert (tasks["upload_start_s"] <= tasks["upload_end_s"]).all()
    assert (tasks["upload_end_s"] <= tasks["done_s"]).all()
    # a child starts only after its parent began storing its output (and notified it in the same round trip)
    assert (tasks["exec_start_s"].to_numpy()[1:] >= tasks["upload_start_s"].to_numpy()[:-1]).all()
    assert left == {f"pl:{{{result.meta['run_id']}}}:metrics"}


def test_a_bulk_reply_is_received_whole_and_the_connection_stays_in_step(client: redis.Redis) -> None:
    wire = Wire(client)
    value = bytes(range(256)) * (2**20 // 256) + b"x"
    client.set("w:bulk", value)
    got = wire.get_bulk(("GET", "w:bulk"))
    assert got == value and isinstance(got, bytearray)
    assert wire.get_bulk(("GETRANGE", "w:bulk", 0, 99)) == value[:100]
    assert wire.get_bulk(("GET", "w:missing")) is None
    assert wire.get_bulk(("GETRANGE", "w:missing", 0, 9)) == b""
    client.rpush("w:list", b"1")
    with pytest.raises(redis.ResponseError):
        wire.get_bulk(("GET", "w:list"))
    assert wire.call([("PING",)]) == [b"PONG"]           # nothing left unread after an error
    wire.send([("GET", "w:bulk")])
    with pytest.raises(RuntimeError):                      # a reply is owed: refuse rather than mix replies
        wire.get_bulk(("GET", "w:bulk"))
    assert wire.read(1) == [value]
    client.delete("w:bulk", "w:list")


def test_one_large_input_reaches_its_child_intact() -> None:
    from planning.sources.dsl import build_workflow, task

    @task
    def make(n):
        return bytes(range(256)) * n

    @task
    def digest(data):
        import hashlib
        return hashlib.sha256(data).hexdigest(), len(data)

    wf = build_workflow(digest.named("b")(make.named("a")(4096)), name="big-pair")
    plan = assigned_plan(wf, {"a": "wa", "b": "wb"}, "large")
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        result = ex.run(wf, plan)
    assert result.results == {"b": run_locally(wf)["b"]}
    tasks = result.trace.validate().tasks.set_index("task_id")
    assert tasks.at["b", "input_bytes"] == 256 * 4096
    # the large output is stored in a round trip of its own, before the child is started
    assert tasks.at["a", "upload_start_s"] <= tasks.at["a", "upload_end_s"] <= tasks.at["a", "done_s"]
    assert tasks.at["a", "upload_end_s"] <= tasks.at["b", "download_start_s"]


def test_several_large_inputs_and_a_small_one_reach_their_gather_intact_and_in_order() -> None:
    """A gather's inputs adding up to more than a pipeline's worth: each large one received into its own buffer on
    the worker's connection, the small one pipelined (executor.worker_data: _fetch_large), every value where it
    belongs."""
    from executor.worker_data import BULK_MIN_BYTES, PIPELINE_FETCH_BYTES
    from planning.sources.dsl import build_workflow, task

    @task
    def make(seed, n):
        return bytes((seed + i) % 256 for i in range(256)) * n

    @task
    def digest(a, small, b, c):
        import hashlib
        return [hashlib.sha256(x).hexdigest() for x in (a, small, b, c)], [len(x) for x in (a, small, b, c)]

    sizes = {"a": 4096, "small": 16, "b": 2048, "c": 3000}      # 1 MiB, 4 KiB, 512 KiB, 750 KiB
    parts = {name: make.named(name)(k, n) for k, (name, n) in enumerate(sizes.items())}
    wf = build_workflow(digest.named("g")(parts["a"], parts["small"], parts["b"], parts["c"]), name="gather")
    assert sum(256 * n for n in sizes.values()) >= PIPELINE_FETCH_BYTES and 256 * sizes["small"] < BULK_MIN_BYTES
    plan = assigned_plan(wf, {"a": "wa", "small": "ws", "b": "wb", "c": "wc", "g": "wg"}, "large")
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        result = ex.run(wf, plan)
    assert result.results == {"g": run_locally(wf)["g"]}
    assert result.results["g"][1] == [256 * n for n in sizes.values()]
    assert result.trace.validate().tasks.set_index("task_id").at["g", "input_bytes"] == 256 * sum(sizes.values())


def test_fetch_large_pipelines_the_small_inputs_and_receives_each_large_one_whole(client: redis.Redis) -> None:
    from executor.worker_data import BULK_MIN_BYTES, WorkerData

    values = {"big1": b"x" * (2 << 20), "tiny": b"t" * 10, "big2": b"y" * BULK_MIN_BYTES, "none": None}
    for key, value in values.items():
        client.delete(key)
        if value is not None:
            client.set(key, value)
    worker = WorkerData()
    worker.wire = Wire(client)
    worker._read_command = lambda parent, n: ("GET", parent)
    plan = [(k, False, None) for k in values]
    raw = worker._fetch_large(plan, {k: len(v or b"") for k, v in values.items()})
    assert [bytes(r) if r is not None else None for r in raw] == list(values.values())
    assert type(raw[1]) is bytes and type(raw[0]) is not bytes      # pipelined, parsed; received into a buffer
    assert worker.wire.whole_transfers is False and worker.wire.pending == 0     # restored, in step
    assert worker.wire.call([("PING",)]) == [b"PONG"]


def test_a_round_trip_whose_first_reply_is_large_reads_every_reply_in_step(client: redis.Redis) -> None:
    wire = Wire(client)
    value = bytes(range(256)) * (2**20 // 256) + b"y"
    client.set("w:big", value)
    client.set("w:small", b"s")
    got = wire.call_bulk_first([("GET", "w:big"), ("GET", "w:small"), ("PING",)])
    assert got == [value, b"s", b"PONG"] and isinstance(got[0], bytearray)   # received into its own buffer
    # a short first reply, a missing key, a range: the parser reads them and whatever came after
    assert wire.call_bulk_first([("GET", "w:small"), ("GET", "w:big")]) == [b"s", value]
    assert wire.call_bulk_first([("GET", "w:missing"), ("GETRANGE", "w:big", 0, 9)]) == [None, value[:10]]
    assert wire.call_bulk_first([("GETRANGE", "w:big", 0, 2**19 - 1), ("EXISTS", "w:big")]) == [value[:2**19], 1]
    client.rpush("w:list2", b"1")
    for commands in ([("GET", "w:list2"), ("GET", "w:big")], [("GET", "w:big"), ("GET", "w:list2"), ("PING",)]):
        with pytest.raises(redis.ResponseError):            # an error raises once every reply is read
            wire.call_bulk_first(commands)
        assert wire.call([("PING",)]) == [b"PONG"]          # nothing left unread
    client.delete("w:big", "w:small", "w:list2")


def test_a_head_packed_once_sends_as_its_arguments_followed_by_the_rest(client: redis.Redis) -> None:
    from executor.server.cluster import _key_of
    from executor.wire import head, unpacked

    lead = head(("RPUSH", "w:h"))
    cmd = (lead, b"x", "y", 3)
    assert b"".join(pack([cmd])) == b"".join(redis.Connection().pack_commands([("RPUSH", "w:h", b"x", "y", 3)]))
    assert unpacked(cmd) == ("RPUSH", "w:h", b"x", "y", 3)
    assert _key_of(cmd) == "w:h"                       # a cluster routes it by the head's key
    assert Wire(client).call([cmd, (lead, b"z")]) == [3, 4]
    assert client.lrange("w:h", 0, -1) == [b"x", b"y", b"3", b"z"]
    client.delete("w:h")


def test_a_completion_s_digest_and_keys_are_packed_once_per_run() -> None:
    from executor.keys import RunKeys
    from executor.scripts import Scripts

    scripts, k = Scripts(None), RunKeys("r1")
    first = scripts.commit(k, "t", "w", "L:1:h", 60_000, "", b"", ["c"], ["S", k.out("t"), b"v"])
    assert b"".join(pack([first])) == b"".join(redis.Connection().pack_commands([
        ("EVALSHA", scripts.commit_sha, 5, k.done, k.running, k.deps, k.events, k.metrics,
         "t", "w", "L:1:h", 60_000, "", b"", 1, "c", "S", k.out("t"), b"v")]))
    assert scripts.commit(k, "u", "w", "L:1:h", 60_000, "", b"", [], [])[0] is first[0]   # the same head
    other = scripts.commit(RunKeys("r2"), "t", "w", "L:1:h", 60_000, "", b"", [], [])
    assert other[0].args[3] == RunKeys("r2").done      # another run: its own keys


def test_the_socket_timeout_moves_to_the_kernel_and_still_raises_a_timeout() -> None:
    """Blocking mode with SO_RCVTIMEO (one system call per recv, no poll before it); a reply that does not
    come in time is still redis-py's TimeoutError, and the connection is dropped (no reply answers the
    wrong command)."""
    import socket
    import struct

    from redis.exceptions import TimeoutError as RedisTimeout

    with redis_endpoint(None) as ep:
        wire = Wire(ep.client(socket_timeout=0.3))
        assert wire.call([("PING",)]) == [b"PONG"]
        sock = wire.conn._sock
        assert sock.gettimeout() is None
        sec, usec = struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16))
        assert (sec, usec) == (0, 300_000)
        wire.send([("BLPOP", "w:never", 5)])
        with pytest.raises(RedisTimeout):
            wire.read()
        assert wire.pending == 0 and wire.conn._sock is None
        assert wire.call([("PING",)]) == [b"PONG"]          # reconnects, its new socket tuned too
        assert wire.conn._sock.gettimeout() is None
        with pytest.raises(RedisTimeout):
            wire.get_bulk(("BLPOP", "w:never", 5))


def test_replies_are_taken_from_the_parser_without_redis_py_s_read_response(client: redis.Redis) -> None:
    """Wire.read takes replies from the hiredis reader itself: redis-py's read_response is never called, yet a
    reply split over many receives, nested arrays, nils and an error in the middle come back as it gives them."""
    wire = Wire(client)
    wire.call([("PING",)])

    def refuse(*args, **kwargs):
        raise AssertionError("redis-py's read_response was called")

    wire.conn.read_response = refuse
    big = bytes(range(256)) * 4096                          # 1 MiB: many receives of the parser's buffer
    wire.send([("SET", "w:r", big), ("GET", "w:r"), ("INCR", "w:r"), ("RPUSH", "w:q", b"a", b"b"),
               ("LPOP", "w:q", 5), ("GET", "w:none")])
    with pytest.raises(redis.ResponseError):               # INCR of a non-integer: raised after every reply
        wire.read()
    assert wire.pending == 0
    assert wire.call([("GET", "w:r"), ("LRANGE", "w:q", 0, -1)]) == [big, []]   # still in step
    client.delete("w:r", "w:q")
