"""Bookkeeping of what was delivered: safe state, the run summary, the dead-letter file.

Every RECORD message gets a sequence number as it is read. A STATE message covers the
records read before it. A state may be emitted only once every record it covers is
settled: confirmed by Gorgias, or (under ``on_error: continue``) reported as failed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from target_gorgias.outcomes import SyncOutcome
from target_gorgias.request_builder import jsonable, to_json


class StateTracker:
    """Which records are settled, and so which state is safe to emit. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_seq = 0
        self._open: dict[int, int] = {}
        self._states: deque[tuple[int, Any]] = deque()
        self._safe: Any = None

    def begin_record(self) -> int:
        """A RECORD message was read: its sequence number. Called by the reading thread only.

        The record needs no entry while it is being processed: every STATE that could cover
        it is read after it, and units it produces are added with ``add_unit``.
        """
        seq = self._next_seq
        self._next_seq = seq + 1
        return seq

    @property
    def records_read(self) -> int:
        """RECORD messages read so far."""
        return self._next_seq

    def add_unit(self, seq: int) -> None:
        """Record ``seq`` produced one unit of work that must settle before state passes it."""
        with self._lock:
            self._open[seq] = self._open.get(seq, 0) + 1

    def settle(self, seqs: list[int]) -> None:
        """Units of these records were delivered or reported as failed."""
        with self._lock:
            for seq in seqs:
                left = self._open[seq] - 1
                if left:
                    self._open[seq] = left
                else:
                    del self._open[seq]

    def add_state(self, value: Any) -> None:
        """A STATE message was read: it covers every record read so far."""
        with self._lock:
            self._states.append((self._next_seq, value))
            self._advance()

    def safe_state(self) -> Any:
        """The newest state whose records are all settled (None if there is none)."""
        with self._lock:
            self._advance()
            return self._safe

    def _advance(self) -> None:
        """Move every state whose records are all settled out of the queue (O(1) amortised).

        Units are added in sequence order and dicts keep insertion order, so the first key
        of ``_open`` is the oldest unsettled record.
        """
        watermark = next(iter(self._open), self._next_seq)
        states = self._states
        while states and states[0][0] <= watermark:
            self._safe = states.popleft()[1]


class Summary:
    """Counts per stream for the end-of-run line (``N delivered, M failed``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()

    def add(self, stream: str, *, delivered: int = 0, failed: int = 0,
            outcome: str | None = None) -> None:
        """Count records of ``stream`` (and their sync-mode outcome, if any)."""
        with self._lock:
            self.delivered[stream] += delivered
            self.failed[stream] += failed
            if outcome:
                self.outcomes[outcome] += delivered

    def line(self) -> str:
        """``12 delivered, 1 failed (customers: 12 delivered; tickets: 1 failed)``."""
        streams = sorted(set(self.delivered) | set(self.failed))
        per = "; ".join(
            f"{s}: {self.delivered[s]} delivered"
            + (f", {self.failed[s]} failed" if self.failed[s] else "")
            for s in streams
        )
        total = f"{sum(self.delivered.values())} delivered, {sum(self.failed.values())} failed"
        if self.outcomes:
            total += " - " + ", ".join(
                f"{self.outcomes[o]} {o}" for o in (SyncOutcome.CREATED, SyncOutcome.UPDATED,
                                                      SyncOutcome.UNCHANGED, SyncOutcome.SKIPPED))
            if self.outcomes[SyncOutcome.MERGED]:
                total += f", {self.outcomes['merged']} merged (not deleted)"
        return f"{total} ({per})" if per else total


class DeadLetters:
    """Appends every record that finally failed to a JSONL file (if configured)."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        #: Applied to every line before it is written (removes credentials).
        self.redact: Callable[[str], str] = str

    def write(self, *, stream: str, position: int, record: Any, status: int | None,
              error: Any, attempts: int, reason: str) -> None:
        """Append one failed record."""
        if self.path is None:
            return
        line = to_json({
            "stream": stream,
            "position": position,
            "status": status,
            "error": jsonable(error),
            "reason": reason,
            "attempts": attempts,
            "failed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "record": jsonable(record),
        })
        line = self.redact(line)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
