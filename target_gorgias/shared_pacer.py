"""The pacer of a run that shares its account's rate with other runs, through a store.

``make_pacer`` picks it from ``rate_limit_store``: ``local`` (default: a file under the
user's cache directory), ``redis://…`` (many machines), ``none`` (the header-driven
``Pacer`` of this process only). A store that cannot be reached, at start or later,
falls back to that ``Pacer`` with a warning.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from target_gorgias.errors import StoreError
from target_gorgias.pacer import Pacer, Stopped, parse_limit_header
from target_gorgias.settings import Settings
from target_gorgias.shared_bucket import (
    FileStore,
    RedisStore,
    account_key,
    default_store_path,
    describe_url,
)

#: Longest sleep between two asks of the store: keeps the lease fresh and stops quick.
MAX_POLL = 0.5


class Store(Protocol):
    """What ``SharedPacer`` needs from a store."""

    kind: str

    def run(self, member: str, op: str, cap: float, rate: float, arg: float = 0.0,
            now: float | None = None) -> dict[str, float]: ...

    def close(self) -> None: ...


class SharedPacer(Pacer):
    """A ``Pacer`` (same surface: ``acquire``, ``observe``, ``pause``, ``stop``, ``waited``)
    whose bucket is the account's, in ``store``, shared with every run on the account.

    If the store fails, it goes on as the plain header-driven ``Pacer`` it extends.
    """

    def __init__(self, store: Store, limit: int, window: float, logger: logging.Logger, *,
                 where: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limit, window, clock=clock)
        self.store = store
        self.where = where
        self.logger = logger
        self.member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.peers = 0  # most other runs seen at once
        self._members = 1
        self._turn = threading.Lock()  # held by the one thread that asks the store
        self._lock = threading.Lock()
        self._fallen = False
        self._closed = False
        self._ask("renew")
        atexit.register(self.close)

    def _ask(self, op: str, arg: float = 0.0) -> dict[str, float] | None:
        """One store operation; None (and the fallback pacer from now on) if it failed."""
        if self._fallen:
            return None
        try:
            result = self.store.run(self.member, op, self.capacity, self.full_rate, arg)
        except StoreError as exc:
            self._fall_back(str(exc))
            return None
        self._seen(int(result["members"]))
        return result

    def _seen(self, members: int) -> None:
        if members != self._members and members > 0:
            with self._lock:
                old, self._members = self._members, members
                self.peers = max(self.peers, members - 1)
            if old != members:
                self.logger.info("Rate limit: %d run(s) now share this account's rate (%s)",
                                 members, self.store.kind)

    def _fall_back(self, reason: str) -> None:
        with self._lock:
            if self._fallen:
                return
            self._fallen = True
        self.logger.warning(
            "Rate limit store %s unreachable (%s): pacing this run alone from Gorgias' "
            "rate-limit header, slowing down on 429s", self.where, reason)

    def acquire(self) -> float:
        """Block until the shared bucket grants a unit; return the seconds this thread waited.

        Raises ``Stopped`` once ``stop`` is set.
        """
        waited = 0.0
        started = self._clock()
        try:
            while True:
                if self.stop.is_set():
                    raise Stopped
                if self._fallen:
                    return waited + super().acquire()
                if not self._turn.acquire(timeout=MAX_POLL):
                    waited = self._begin_wait(started, waited)
                    continue
                # One thread per run asks the store, the others queue behind it: every run
                # asks equally often, however many threads it has.
                try:
                    while not self.stop.is_set():
                        result = self._ask("acquire")
                        if result is None:
                            break  # the store failed: the fallback takes over
                        if result["granted"]:
                            self.usage.grant(self._clock())
                            return waited
                        waited = self._begin_wait(started, waited)
                        self.stop.wait(min(MAX_POLL, max(0.001, result["delay"]))
                                       + 0.002 * random.random())
                finally:
                    self._turn.release()
        finally:
            if waited:
                self._wait_clock.end()

    def _begin_wait(self, started: float, waited: float) -> float:
        if not waited:
            self._wait_clock.begin()
        return max(self._clock() - started, 1e-9)

    def observe(self, header: str | None) -> None:
        """Share what Gorgias' ``used/limit`` header says: a higher use, a lower limit."""
        if self._fallen:
            super().observe(header)
            return
        parsed = parse_limit_header(header)
        if parsed is None:
            return
        used, limit = parsed
        if limit < self.capacity:
            self.capacity = float(limit)
            self.full_rate = self.rate = limit / self.window
        self._ask("observe", float(used))

    def pause(self, seconds: float) -> None:
        """A 429: hold every run on the account for ``seconds``, with a full bucket."""
        if self._fallen:
            super().pause(seconds)
            return
        self._ask("pause", seconds)

    def close(self) -> None:
        """Give up the lease (the others take over its share at once)."""
        if self._closed:
            return
        self._closed = True
        if not self._fallen:
            with contextlib.suppress(StoreError):
                self.store.run(self.member, "leave", self.capacity, self.full_rate)
        self.store.close()

    def describe(self) -> str:
        """For the summary: this run's share of the account's rate, and with whom."""
        share = self.usage.share(self.capacity - self.margin, self.full_rate)
        if self._fallen:
            how = f"not shared: {self.where} unreachable, paced from the header"
        elif self.peers:
            how = f"shared with up to {self.peers} other run(s) via {self.where}"
        else:
            how = f"alone on the account; shared via {self.where}"
        return f"this run used {share:.0%} of the account's rate ({how})"


def make_pacer(settings: Settings, logger: logging.Logger) -> Pacer:
    """The pacer ``rate_limit_store`` asks for (see the module docstring)."""
    store_setting = settings.rate_limit_store
    limit, window = settings.rate_limit, settings.rate_limit_window
    if store_setting == "none":
        pacer = Pacer(limit, window)
        pacer.mode = "not shared: rate_limit_store is none"
        return pacer
    key = account_key(settings.base_url, settings.auth_kind, settings.email)
    store: Store
    try:
        if store_setting == "local":
            path = (Path(settings.rate_limit_store_path).expanduser()
                    if settings.rate_limit_store_path else default_store_path(key))
            where = f"local store {path}"
            store = FileStore(path)
        else:
            where = f"Redis {describe_url(store_setting)}"
            store = RedisStore(store_setting, key)
    except StoreError as exc:
        logger.warning("Rate limit store %s unreachable (%s): pacing this run alone from "
                       "Gorgias' rate-limit header, slowing down on 429s", where, exc)
        pacer = Pacer(limit, window)
        pacer.mode = f"not shared: {where} unreachable, paced from the header"
        return pacer
    return SharedPacer(store, limit, window, logger, where=where)
