"""Progress lines on long runs: at 2 requests/s, 10,000 records take 83 minutes.

A daemon thread wakes every ``progress_interval`` seconds (an ``Event`` ends it at once) and
logs one line from the run's counters: delivered and failed so far, the request rate of the
last interval against the rate the bucket allows, 429s, and what is waiting.
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections.abc import Callable

if t.TYPE_CHECKING:
    from target_gorgias.client import Result
    from target_gorgias.request_builder import Call
    from target_gorgias.run import Run


class Waiting:
    """Calls handed to the HTTP pool: queued (not started) and in flight (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queued = 0
        self.in_flight = 0

    def add(self, n: int) -> None:
        """``n`` calls were handed to the pool."""
        with self._lock:
            self.queued += n

    def track(self, send: Callable[[Call], Result]) -> Callable[[Call], Result]:
        """``send`` counted: queued -> in flight -> done (also when it raises)."""

        def tracked(call: Call) -> Result:
            with self._lock:
                self.queued -= 1
                self.in_flight += 1
            try:
                return send(call)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return tracked


class Progress:
    """Logs a progress line every ``interval`` seconds until ``stop``."""

    def __init__(self, run: Run, interval: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.run = run
        self.interval = interval
        self._clock = clock
        self._started = clock()
        self._last = (self._started, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (not with ``interval`` 0, nor in a dry run: nothing is sent)."""
        if self.interval <= 0 or self.run.dry_run is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="gorgias-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread now (it logs nothing more: the summary follows)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run.logger.info("%s", self.line())

    def line(self) -> str:
        """``Progress: 120 delivered, 2 failed; 1.9 req/s (allowed 2.0/s = 40 per 20s); ...``."""
        run = self.run
        now = self._clock()
        requests = run.client.stats.requests
        since, before = self._last
        self._last = (now, requests)
        rate = (requests - before) / (now - since) if now > since else 0.0
        pacer = run.pacer
        delivered = sum(run.summary.delivered.values())
        failed = sum(run.summary.failed.values())
        waiting = run.waiting
        return (
            f"Progress: {delivered} delivered, {failed} failed; "
            f"{rate:.1f} req/s (allowed {pacer.rate:.1f}/s = {pacer.capacity:g} per "
            f"{pacer.window:g}s); {run.client.stats.throttled} x 429; "
            f"waiting: {waiting.queued} queued, {waiting.in_flight} in flight; "
            f"{run.tracker.records_read} records read, {requests} requests in {now - self._started:.0f}s"
        )
