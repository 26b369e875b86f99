"""Server-side scripts: a task's completion and a worker's start, each atomic and one round trip.

``FACTS.md``: a no-op DAG coordinated with one Lua call per completion costs
~145 us/task against 330-450 us with one command per counter.

The *commit* script is a task's whole completion, applied all or nothing: it
marks the task done (exactly once: a second commit of the same task - a
re-run after its worker died, a process that lost its claim - changes nothing),
stores the output, decrements the counters of the children that have several
parents (a child with one parent needs no counter: it is ready the moment its
parent is done), removes counters that reached zero, counts this task's reads of
stored inputs and sets aside an input its last reader read (per-task output retention: renamed, freed by the
worker right after the commit - see the 'D' op), pushes the completion's
invocations, event and metrics, and gives every key it creates the run's TTL.
A start invocation goes straight to an idle process of the completing worker's
launcher, when one of the start's profile and limits waits on its idle list
(``H``): the process wakes on its inbox at once, instead of the launcher waking on
the launch queue and handing it on (two wake-ups per hop: ~1.5 ms of a warm
hand-off).  The launcher learns of it from a notice list it reads every loop
(:meth:`executor.launcher.queues.Launcher.take_handed`) and then renews the
process's lease and watches it as if it had handed the start itself.  With no
idle process (or no live launcher) the start goes to the launch queue as before.
It returns the children it made ready.  Because the script is atomic, a worker
killed at any moment has either completed a task entirely or not at all.

The *claim* script is a worker's start: it refuses a start message of a run that
is over, or one another process already serves (a duplicate), and otherwise
registers the process as the logical worker's holder and sets its lease.
"""

from __future__ import annotations

import hashlib

import redis

from executor.keys import RunKeys
from executor.wire import Head, head

__all__ = ["COMMIT_LUA", "CLAIM_LUA", "Scripts", "FENCED", "DUPLICATE"]

#: Commit replies (first element) besides 1 (committed).
FENCED = -1      # another process holds this logical worker now
DUPLICATE = -2   # the task was already committed

# KEYS: done hash, running hash, deps hash, events list, metrics list
# ARGV: task, worker, holder, ttl_ms, event ('' none), batch ('' none), n children with several parents,
#       those children..., then ops: 'S' key value (SET PX ttl) | 'P' key value (RPUSH + PEXPIRE) | 'I' key (INCR + PEXPIRE)
#       | 'D' out-key reads-hash task readers (one more read of a stored output; the last one renames it to
#         out-key:released, which the worker unlinks after the commit - below) | 'X' the same, the last one deletes it
#         (an output under executor.worker_data.SET_ASIDE_BYTES, and a background commit's reads)
#       | 'H' idle-list inbox-prefix inbox-suffix inbox-ttl-s launcher-alive handed-list launch-queue run start
#         (a start: to an idle process of its launcher when one waits, else to the launch queue; the inbox item is
#         executor.keys.inbox_item's 'run\\nH\\nstart', the notice 'pid\\nrun\\nstart')
# How the 'D' op removes an output its last reader read: RENAME (O(1)), not DEL.  Freeing a large
# value costs the single-threaded server time in proportion to its size (a 32 MB string 2.2 ms, with UNLINK
# too: a string is always freed at once), and inside the commit that time delays everything the commit releases
# (issue 17: fan-large's gather deleted seven 32 MB partials in its commit, ~9 ms before the client heard the run
# was done; critical-path retention measured +2.4 % real against 0 predicted).  The renamed value is unreadable
# under the output's name at once, and the worker UNLINKs it right after the commit's reply, so the children and
# the client have their notices first (executor.worker_data.free_released).  Not an expiry (PEXPIRE 1): the
# server's expiry cycle samples 20 keys per tick, and among 2000 other keys with a TTL twenty expired 1 MB outputs
# stayed 8.5 s, among 20000 over a minute.  A background (lazy) commit ('X') deletes in place: it is off the
# critical path already.

COMMIT_LUA = """
local ttl = tonumber(ARGV[4])
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then return {-1} end
if redis.call('HSETNX', KEYS[1], ARGV[1], redis.call('HLEN', KEYS[1]) + 1) == 0 then return {-2} end
redis.call('PEXPIRE', KEYS[1], ttl)
local ready = {1}
local n = tonumber(ARGV[7])
for i = 8, 7 + n do
  local c = ARGV[i]
  if redis.call('HINCRBY', KEYS[3], c, -1) <= 0 then
    redis.call('HDEL', KEYS[3], c)
    ready[#ready + 1] = c
  end
end
local i = 8 + n
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'S' then
    redis.call('SET', ARGV[i + 1], ARGV[i + 2], 'PX', ttl)
    i = i + 3
  elseif op == 'D' or op == 'X' then
    if redis.call('HINCRBY', ARGV[i + 2], ARGV[i + 3], 1) >= tonumber(ARGV[i + 4]) then
      if op == 'X' then
        redis.call('DEL', ARGV[i + 1])
      elseif redis.call('EXISTS', ARGV[i + 1]) == 1 then
        redis.call('RENAME', ARGV[i + 1], ARGV[i + 1] .. ':released')
      end
      redis.call('HDEL', ARGV[i + 2], ARGV[i + 3])
    else
      redis.call('PEXPIRE', ARGV[i + 2], ttl)
    end
    i = i + 5
  elseif op == 'P' then
    redis.call('RPUSH', ARGV[i + 1], ARGV[i + 2])
    redis.call('PEXPIRE', ARGV[i + 1], ttl)
    i = i + 3
  elseif op == 'H' then
    local pid = false
    if redis.call('EXISTS', ARGV[i + 5]) == 1 then pid = redis.call('RPOP', ARGV[i + 1]) end
    if pid then
      local inbox = ARGV[i + 2] .. pid .. ARGV[i + 3]
      redis.call('RPUSH', inbox, ARGV[i + 8] .. '\\nH\\n' .. ARGV[i + 9])
      redis.call('EXPIRE', inbox, tonumber(ARGV[i + 4]))
      redis.call('RPUSH', ARGV[i + 6], pid .. '\\n' .. ARGV[i + 8] .. '\\n' .. ARGV[i + 9])
      redis.call('EXPIRE', ARGV[i + 6], tonumber(ARGV[i + 4]))
    else
      redis.call('RPUSH', ARGV[i + 7], ARGV[i + 9])
      redis.call('PEXPIRE', ARGV[i + 7], ttl)
    end
    i = i + 10
  else
    redis.call('INCR', ARGV[i + 1])
    redis.call('PEXPIRE', ARGV[i + 1], ttl)
    i = i + 2
  end
end
if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[5]); redis.call('PEXPIRE', KEYS[4], ttl) end
if ARGV[6] ~= '' then redis.call('RPUSH', KEYS[5], ARGV[6]); redis.call('PEXPIRE', KEYS[5], ttl) end
return ready
"""

# KEYS: live, claims hash, running hash, lease
# ARGV: claim field (worker#generation), holder, worker, lease_ms, ttl_ms
CLAIM_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[4]))
return 1
"""


class Scripts:
    """The scripts, loaded once per process, sent with plain EVALSHA.

    redis-py's ``Script`` objects send ``SCRIPT EXISTS`` before every pipeline
    that uses them - a second round trip per task; loading once and sending
    ``EVALSHA`` keeps a completion at one.  Given a client, both are loaded now;
    without one (a worker process), their digests are computed here and the
    ``SCRIPT LOAD`` commands (:meth:`load_commands`) ride in the process's first
    round trip, before the first ``EVALSHA`` - a cold start saves a connection and
    two round trips.
    """

    def __init__(self, client: redis.Redis | None) -> None:
        self.commit_sha = hashlib.sha1(COMMIT_LUA.encode()).hexdigest()
        self.claim_sha = hashlib.sha1(CLAIM_LUA.encode()).hexdigest()
        self.loaded = False
        self._heads: dict[str, Head] = {}   # a run's commit head (:meth:`commit`), per run this process serves
        if client is not None:
            loaded = (client.script_load(COMMIT_LUA), client.script_load(CLAIM_LUA))
            if loaded != (self.commit_sha, self.claim_sha):
                raise RuntimeError(f"the server's script digests {loaded} differ from SHA-1 of the scripts")
            self.loaded = True

    def load_commands(self) -> list[tuple]:
        """``SCRIPT LOAD`` of both scripts until a round trip carried them (then nothing)."""
        return [] if self.loaded else [("SCRIPT", "LOAD", COMMIT_LUA), ("SCRIPT", "LOAD", CLAIM_LUA)]

    def commit(self, run_keys: RunKeys, task: str, worker: str, holder: str, ttl_ms: int, event: str, batch: bytes,
               multi: list[str], ops: list) -> tuple:
        """The ``EVALSHA`` command of a completion (for :class:`executor.wire.Wire`): its digest and keys, the same
        for every completion of a run, are packed once per run (:class:`executor.wire.Head`)."""
        lead = self._heads.get(run_keys.run_id)
        if lead is None:
            if len(self._heads) >= 8:   # a warm process serves run after run: keep the latest few
                self._heads.clear()
            k = run_keys
            lead = self._heads[k.run_id] = head(("EVALSHA", self.commit_sha, 5, k.done, k.running, k.deps, k.events,
                                                 k.metrics))
        return (lead, task, worker, holder, ttl_ms, event, batch, len(multi), *multi, *ops)

    def claim(self, run_keys: RunKeys, worker: str, generation: int, holder: str, lease_ms: int, ttl_ms: int) -> tuple:
        k = run_keys
        return ("EVALSHA", self.claim_sha, 4, k.live, k.claims, k.running, k.lease(worker),
                f"{worker}#{generation}", holder, worker, lease_ms, ttl_ms)
