"""The scheduler: units become calls and go out while the tap is still extracting.

Every unit a sink builds is handed to ``Scheduler.submit`` from the reading thread. The
scheduler keeps three rules:

* **Stream order.** A unit is sent only after every call of *another* stream submitted
  before it was answered: when the stream changes, open batches are sent and the window
  drains first (a barrier). Parents (customers) thus reach Gorgias before the children
  (tickets) that follow them in the input. Within a stream, calls go out concurrently.
* **In-flight window.** At most ``window`` calls are submitted and unanswered at once;
  ``submit`` blocks until one settles, which pauses reading stdin (backpressure). Memory
  is bounded by the window, not by ``batch_size_rows`` or the input; an answered call's
  result is released as soon as ``Run.finish`` accounted for it.
* **Batches.** A batched template's units wait in an open group (per path and
  ``group_by`` value) until it is full, until no unit joined it for ``FLUSH_INTERVAL``
  seconds, or until the stream changes or the input ends.

A background ticker sends idle groups and writes safe state every ``STATE_INTERVAL``.
"""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass, field

from target_gorgias.client import Result
from target_gorgias.request_builder import Call, Unit

if t.TYPE_CHECKING:
    from target_gorgias.run import Run
    from target_gorgias.sinks import GorgiasSink

#: A group not joined by a new unit for this long is sent (seconds).
FLUSH_INTERVAL = 1.0
#: How often the ticker looks for idle groups and due state (seconds).
TICK = 0.1
#: In-flight window, as a multiple of ``max_concurrency``: enough queued calls that no
#: worker waits for the reader, few enough that memory stays flat.
WINDOW_FACTOR = 2


@dataclass
class _Group:
    """Units of one batched stream waiting to share a call (same path and group value)."""

    sink: GorgiasSink
    members: list[Unit] = field(default_factory=list)
    size: int = 0
    touched: float = 0.0


class Scheduler:
    """Stream order, in-flight window and batch grouping for one run. Thread-safe."""

    def __init__(self, run: Run, window: int, *,
                 flush_interval: float = FLUSH_INTERVAL) -> None:
        self.run = run
        self.window = max(1, window)
        self.flush_interval = flush_interval
        #: Held by whoever sends (the reader or the ticker), so sends never interleave.
        self._send_lock = threading.RLock()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stream: str | None = None
        self._groups: dict[tuple[str, str, t.Any], _Group] = {}
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- the reading thread ---------------------------------------------------------

    def submit(self, sink: GorgiasSink, unit: Unit) -> None:
        """Send ``unit`` (or add it to its open batch) in stream order; may block.

        Raises ``TargetFailure`` once the run has failed (``on_error: fail``).
        """
        self._start_ticker()
        self.run.raise_if_failed()
        with self._send_lock:
            if sink.stream_name != self._stream:
                self._barrier()
                self._stream = sink.stream_name
            if not sink.settings.batch.enabled:
                self._send(sink, next(iter(sink.builder.calls([unit]))))
            else:
                self._add_to_group(sink, unit)
        self.run.raise_if_failed()

    def finish(self) -> None:
        """End of input: send open groups, wait for every call, stop the ticker."""
        with self._send_lock:
            self._barrier()
        self._closed.set()
        self.run.raise_if_failed()

    def close(self) -> None:
        """Stop the ticker (the run is ending, whatever happened)."""
        self._closed.set()

    # -- stages ---------------------------------------------------------------------

    def _barrier(self) -> None:
        """Send every open group, then wait until nothing is in flight."""
        for key in list(self._groups):
            self._flush(key)
        with self._cond:
            while self._in_flight:
                self._cond.wait(0.1)

    def _add_to_group(self, sink: GorgiasSink, unit: Unit) -> None:
        builder = sink.builder
        key = (sink.stream_name, unit.path, unit.group)
        part = len(unit.body or b"null") + 1
        group = self._groups.get(key)
        if group is not None and group.size + part > builder.max_body_bytes:
            self._flush(key)
            group = None
        if group is None:
            group = self._groups[key] = _Group(sink, size=builder.batch_overhead - 1)
        group.members.append(unit)
        group.size += part
        group.touched = time.monotonic()
        if len(group.members) >= sink.settings.batch.size:
            self._flush(key)

    def _flush(self, key: tuple[str, str, t.Any]) -> None:
        group = self._groups.pop(key, None)
        if group is None or not group.members:
            return
        for call in group.sink.builder.calls(group.members):
            self._send(group.sink, call)

    def _send(self, sink: GorgiasSink, call: Call) -> None:
        """Take a window slot (waiting for one), then hand the call to the client."""
        run = self.run
        if run.dry_run is not None:
            run.show_dry_run(call)
            return
        with self._cond:
            while self._in_flight >= self.window:
                self._cond.wait(0.1)
            self._in_flight += 1

        def done(result: Result) -> None:
            try:
                run.finish(sink, result)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

        run.waiting.add(1)
        try:
            run.client.submit(call, done, run.waiting.track(sink.sender()))
        except RuntimeError:  # the pool is shut down: the run is ending
            with self._cond:
                self._in_flight -= 1
            raise

    # -- the ticker -----------------------------------------------------------------

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="gorgias-scheduler",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        """Send groups idle for ``flush_interval``; write safe state when it is due."""
        while not self._closed.wait(TICK):
            if self._groups and self._send_lock.acquire(timeout=TICK):
                try:
                    now = time.monotonic()
                    for key, group in list(self._groups.items()):
                        if now - group.touched >= self.flush_interval:
                            self._flush(key)
                except Exception:
                    self.run.logger.debug("Scheduler tick failed", exc_info=True)
                finally:
                    self._send_lock.release()
            self.run.maybe_emit_state()
