"""One account bucket shared by every run that writes to the account.

The state (level, pause, and one lease per live run) lives in a store: a lock-protected
JSON file under the user's cache directory (runs on one machine) or a Redis key updated
by one Lua script (runs on many machines). ``step`` is the whole algorithm, as a pure
function of the state and the time; ``LUA`` is the same algorithm for Redis.

Fairness: each run also has its own small bucket that drains at ``rate / n`` (``n`` live
runs). While the account bucket is less than half full, any run may take a unit; above
that, only runs within their fair share may. So a lone hungry run gets the whole rate,
and no run starves when several are hungry. A lease not renewed for ``LEASE_TTL`` seconds
(the run ended or died) is dropped, and its share goes to the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from target_gorgias.errors import StoreError

#: Seconds after which a run that stopped renewing its lease no longer counts.
LEASE_TTL = 3.0
#: Above this fraction of the bucket, only runs within their fair share take a unit.
OPEN_FRACTION = 0.5
#: Redis keys expire after this long without a request (the bucket is long empty then).
KEY_TTL_MS = 600_000





def account_key(base_url: str, auth_kind: str, email: str | None) -> str:
    """A stable, secret-free id of the account a run writes to (hex, 24 chars)."""
    identity = f"{base_url.rstrip('/').lower()}\n{auth_kind}\n{(email or '').lower()}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def _effective(cap: float) -> float:
    """The capacity a run may fill: one slot stays free (our count runs ahead of Gorgias')."""
    return cap - 1 if cap > 2 else cap


def step(state: dict[str, Any], now: float, member: str, op: str, cap: float, rate: float,
         arg: float = 0.0, ttl: float = LEASE_TTL) -> dict[str, Any]:
    """Apply one operation to ``state`` (in place) at time ``now``; return its result.

    ``op``: ``acquire`` (take a unit if allowed), ``observe`` (``arg`` = the account's used
    count from a header), ``pause`` (``arg`` = seconds of a 429's Retry-After), ``renew``
    (lease only) or ``leave`` (drop the lease). ``cap`` and ``rate`` are this run's view
    of the account's limit; the bucket uses the lowest among live runs.

    Result: ``granted`` (0/1), ``delay`` (seconds to wait before asking again), ``members``
    (live runs, this one included), ``level``.
    """
    members: dict[str, dict[str, float]] = state.setdefault("members", {})
    at = float(state.get("at", now))
    now = max(now, at)  # never let time run backwards (clock steps, other hosts)
    for mid in list(members):
        if mid != member and now - members[mid]["seen"] > ttl:
            del members[mid]
    me = members.get(member) or {"level": 0.0, "taken": 0}
    me.update(seen=now, cap=cap, rate=rate)
    members[member] = me
    caps = [m["cap"] for m in members.values()]
    rates = [m["rate"] for m in members.values()]
    bucket_cap, bucket_rate = min(caps), min(rates)
    n = len(members)
    elapsed = now - at
    level = max(0.0, float(state.get("level", 0.0)) - elapsed * bucket_rate)
    for m in members.values():
        m["level"] = max(0.0, m["level"] - elapsed * bucket_rate / n)
    paused = float(state.get("paused", 0.0))
    granted, delay = 0, 0.0
    full = _effective(bucket_cap)
    if op == "acquire":
        if now < paused:
            delay = paused - now
        else:
            share = max(1.0, full / n)
            fair = n == 1 or me["level"] + 1 <= share
            limit = full if fair else max(1.0, full * OPEN_FRACTION)
            if level + 1 <= limit:
                level += 1
                me["level"] += 1
                me["taken"] += 1
                granted = 1
            else:
                delay = (level + 1 - limit) / bucket_rate
                if not fair:
                    delay = min(delay, (me["level"] + 1 - share) * n / bucket_rate)
    elif op == "observe":
        level = max(level, min(arg, bucket_cap))
    elif op == "pause":
        paused = max(paused, now + arg)
        level = bucket_cap
    elif op == "leave":
        del members[member]
    state.update(level=level, at=now, paused=paused)
    return {"granted": granted, "delay": delay, "members": max(n - (op == "leave"), 0),
            "level": level}


def default_store_path(key: str) -> Path:
    """``$XDG_CACHE_HOME/target-gorgias/rate-<key>.json`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "target-gorgias" / f"rate-{key}.json"


class FileStore:
    """The bucket in a JSON file, updated under an exclusive ``flock`` (one machine)."""

    kind = "local store"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from None
        # flock excludes other processes only: threads share the file description.
        self._threads = threading.Lock()

    def run(self, member: str, op: str, cap: float, rate: float, arg: float = 0.0,
            now: float | None = None) -> dict[str, Any]:
        """Read, ``step`` and write the state, all under the file lock."""
        with self._threads:
            return self._run(member, op, cap, rate, arg, now)

    def _run(self, member: str, op: str, cap: float, rate: float, arg: float,
             now: float | None) -> dict[str, Any]:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(self._fd, 1 << 20, 0)
                try:
                    state = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    state = {}  # torn or foreign content: start over (the header corrects)
                if not isinstance(state, dict):
                    state = {}
                result = step(state, time.time() if now is None else now, member, op, cap,
                              rate, arg)
                data = json.dumps(state).encode()
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, data, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise StoreError(f"{self.path}: {exc.strerror or exc}") from None
        return result

    def close(self) -> None:
        """Release the file."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


#: ``step`` in Lua, run atomically by Redis. KEYS[1]: the bucket; ARGV: member, op, cap,
#: rate, arg, ttl, now ("" = Redis' own clock). Times are kept relative to ``base`` (whole
#: seconds) so they survive cjson's 14 significant digits.
LUA = """
pcall(redis.replicate_commands)
local raw = redis.call('GET', KEYS[1])
local state = {}
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' then state = decoded end
end
local member, op = ARGV[1], ARGV[2]
local cap, rate, arg, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local abs_now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[7] ~= '' then abs_now = tonumber(ARGV[7]) end
if state.base == nil then state.base = math.floor(abs_now) end
local now = abs_now - state.base
if type(state.members) ~= 'table' then state.members = {} end
local members = state.members
local at = tonumber(state.at) or now
if now < at then now = at end
for mid, m in pairs(members) do
  if mid ~= member and now - m.seen > ttl then members[mid] = nil end
end
local me = members[member] or {level = 0, taken = 0}
me.seen, me.cap, me.rate = now, cap, rate
members[member] = me
local n, bcap, brate = 0, nil, nil
for _, m in pairs(members) do
  n = n + 1
  if bcap == nil or m.cap < bcap then bcap = m.cap end
  if brate == nil or m.rate < brate then brate = m.rate end
end
local elapsed = now - at
local level = math.max(0, (tonumber(state.level) or 0) - elapsed * brate)
for _, m in pairs(members) do m.level = math.max(0, m.level - elapsed * brate / n) end
local paused = tonumber(state.paused) or 0
local granted, delay = 0, 0
local full = bcap
if bcap > 2 then full = bcap - 1 end
if op == 'acquire' then
  if now < paused then
    delay = paused - now
  else
    local share = math.max(1, full / n)
    local fair = (n == 1) or (me.level + 1 <= share)
    local limit = full
    if not fair then limit = math.max(1, full * tonumber(ARGV[8])) end
    if level + 1 <= limit then
      level = level + 1
      me.level = me.level + 1
      me.taken = me.taken + 1
      granted = 1
    else
      delay = (level + 1 - limit) / brate
      if not fair then delay = math.min(delay, (me.level + 1 - share) * n / brate) end
    end
  end
elseif op == 'observe' then
  level = math.max(level, math.min(arg, bcap))
elseif op == 'pause' then
  paused = math.max(paused, now + arg)
  level = bcap
elseif op == 'leave' then
  members[member] = nil
  n = n - 1
end
state.level, state.at, state.paused = level, now, paused
redis.call('SET', KEYS[1], cjson.encode(state), 'PX', tonumber(ARGV[9]))
return {granted, tostring(delay), n, tostring(level)}
"""


class RedisStore:
    """The bucket in one Redis key, updated by one Lua script (runs on many machines)."""

    kind = "Redis"

    def __init__(self, url: str, key: str, timeout: float = 2.0) -> None:
        try:
            import redis
        except ImportError:
            raise StoreError("the 'redis' package is not installed "
                             "(pip install 'target-gorgias[redis]')") from None
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=timeout,
                                                socket_connect_timeout=timeout)
            self._client.ping()
            self._script = self._client.register_script(LUA)
        except (*self._errors, ValueError) as exc:
            raise StoreError(_redacted(str(exc), url)) from None
        self._url = url
        self.key = f"target-gorgias:rate:{key}"

    def run(self, member: str, op: str, cap: float, rate: float, arg: float = 0.0,
            now: float | None = None) -> dict[str, Any]:
        """Run the script once: one atomic ``step``."""
        try:
            out = self._script(keys=[self.key], args=[
                member, op, cap, rate, arg, LEASE_TTL, "" if now is None else repr(now),
                OPEN_FRACTION, KEY_TTL_MS])
        except self._errors as exc:
            raise StoreError(_redacted(str(exc), self._url)) from None
        return {"granted": int(out[0]), "delay": float(out[1]), "members": int(out[2]),
                "level": float(out[3])}

    def close(self) -> None:
        """Close the connections."""
        with contextlib.suppress(Exception):
            self._client.close()


def _redacted(text: str, url: str) -> str:
    """``text`` without the URL's password, if it has one."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def describe_url(url: str) -> str:
    """A Redis URL for messages: host, port and db, never the password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
