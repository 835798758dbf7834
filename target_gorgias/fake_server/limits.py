"""The account's leaky bucket and the fault rules."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from target_gorgias.fake_server.model import UNLIMITED


class LeakyBucket:
    """The account's bucket: capacity ``limit``, draining ``limit / window`` per second.

    Not thread-safe by itself: the server calls it under its lock.
    """

    def __init__(self, limit: int | None, window: float) -> None:
        self.limit, self.window = int(limit or 0), float(window)
        self.level, self.at = 0.0, time.monotonic()
        self.recent: deque[float] = deque()  # arrival times, when unlimited

    def configure(self, limit: int | None = None, window: float | None = None) -> None:
        """Change capacity and/or window; the current level is kept."""
        self._leak()
        if limit is not None:
            self.limit = int(limit)
        if window is not None:
            if window <= 0:
                raise ValueError("rate_window must be > 0")
            self.window = float(window)

    def _leak(self) -> None:
        now = time.monotonic()
        if self.limit > 0:
            self.level = max(0.0, self.level - (now - self.at) * self.limit / self.window)
        while self.recent and self.recent[0] <= now - self.window:
            self.recent.popleft()
        self.at = now

    def admit(self) -> float:
        """Take one unit: 0.0 if admitted, else the seconds until one unit is free."""
        self._leak()
        if self.limit <= 0:
            self.recent.append(self.at)
            return 0.0
        if self.level + 1 > self.limit + 1e-9:
            return (self.level + 1 - self.limit) * self.window / self.limit
        self.level += 1
        return 0.0

    def refund(self) -> None:
        """Give back the unit of an admitted request answered 429 by a fault."""
        if self.limit > 0:
            self.level = max(0.0, self.level - 1)
        elif self.recent:
            self.recent.pop()

    def add(self, n: int) -> None:
        """Units used by another client of the account (capped at the capacity)."""
        self._leak()
        if self.limit > 0:
            self.level = min(float(self.limit), self.level + n)
        else:
            self.recent.extend([self.at] * n)

    def header(self) -> str:
        """``used/limit`` for ``X-Gorgias-Account-Api-Call-Limit``."""
        self._leak()
        if self.limit <= 0:
            return f"{len(self.recent)}/{UNLIMITED}"
        return f"{math.ceil(self.level - 1e-9)}/{self.limit}"


# -- faults --------------------------------------------------------------------------------

_FAULT_KEYS = {"count", "method", "path", "status", "when", "body", "headers", "content_type",
               "retry_after", "retry_after_date", "drop", "delay_ms", "raw", "commit_delay_ms",
               "trickle_ms", "non_json", "ignore_filter", "echo_credentials"}
#: Actions: a rule needs at least one of these.
_ACTIONS = {"status", "drop", "delay_ms", "raw", "commit_delay_ms", "trickle_ms", "non_json",
            "ignore_filter", "echo_credentials"}


def check_fault(rule: dict[str, Any]) -> dict[str, Any]:
    """A fault rule with its defaults, or ValueError naming what is wrong."""
    unknown = set(rule) - _FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    if not _ACTIONS & set(rule):
        raise ValueError(f"a fault needs one of: {', '.join(sorted(_ACTIONS))}")
    for key in ("delay_ms", "commit_delay_ms", "trickle_ms"):
        if key in rule and (not isinstance(rule[key], (int, float)) or rule[key] < 0):
            raise ValueError(f"{key} must be a number >= 0")
    echo = rule.get("echo_credentials", True)
    if not (echo is True or (type(echo) is int and 200 <= echo <= 599)):
        raise ValueError("echo_credentials must be true or an HTTP status (200-599)")
    if rule.get("drop") not in (None, "before", "after"):
        raise ValueError("drop must be 'before' or 'after'")
    if rule.get("when", "before") not in ("before", "after"):
        raise ValueError("when must be 'before' or 'after'")
    if "raw" in rule and not isinstance(rule["raw"], dict):
        raise ValueError("raw must be an object {status, body, content_type, headers}")
    rule = {"count": 1, **rule}
    if not isinstance(rule["count"], int) or rule["count"] < 1:
        raise ValueError("count must be a positive integer")
    if rule.get("method"):
        rule["method"] = str(rule["method"]).upper()
    return rule


