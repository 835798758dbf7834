"""What one run shares across sinks and threads, and how it accounts for every call.

``Run`` holds the client, pacer, state tracker, summary, dead letters and stdout writer, and
decides what happens to each answered call and each rejected record (log, response record,
dead letter, state, or stop the run).
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from target_gorgias.client import GorgiasClient, Result, auth_header, head_window
from target_gorgias.custom_fields import CustomFieldTypes
from target_gorgias.delivery import DeadLetters, StateTracker, Summary
from target_gorgias.dry_run import DryRun
from target_gorgias.errors import RecordError, TargetFailure
from target_gorgias.outcomes import OnError, Outcome, SyncOutcome
from target_gorgias.progress import Progress, Waiting
from target_gorgias.redact import secret_forms
from target_gorgias.request_builder import Call, from_json
from target_gorgias.responses import Output
from target_gorgias.scheduler import WINDOW_FACTOR, Scheduler
from target_gorgias.settings import Settings
from target_gorgias.shared_pacer import make_pacer
from target_gorgias.sync import Syncer

if t.TYPE_CHECKING:
    from target_gorgias.sinks import GorgiasSink

#: While calls complete, safe state is written at most this often (seconds), so a crash
#: re-sends little. The SDK itself writes state only after a full drain.
STATE_INTERVAL = 2.0


class Run:
    """What one process shares across sinks and threads: client, pacer, state, output."""

    def __init__(self, settings: Settings, logger: logging.Logger) -> None:
        self.settings = settings
        self.logger = logger
        self.tracker = StateTracker()
        self.summary = Summary()
        self.dead_letters = DeadLetters(settings.dead_letter_path)
        self.output = Output(emit_responses=settings.emit_responses,
                             stream=settings.response_stream,
                             include_request=settings.response_include_request)
        self.pacer = make_pacer(settings, logger)
        self.client = GorgiasClient(
            base_url=settings.base_url,
            authorization=auth_header(settings.auth_kind, settings.email, settings.secret),
            headers=settings.headers, timeout=settings.timeout, pacer=self.pacer,
            max_retries=settings.max_retries, max_concurrency=settings.max_concurrency,
            ca_bundle=settings.ca_bundle, logger=logger,
            max_retry_after=settings.max_retry_after,
            lookup_grace=settings.lookup_grace_seconds,
            head_window=head_window(settings.max_concurrency, settings.rate_limit,
                                    settings.rate_limit_window, STATE_INTERVAL),
        )
        self.syncer = Syncer(self.client)
        self.custom_fields = CustomFieldTypes(self.client)
        self.dry_run = DryRun(
            base_url=settings.base_url, auth_kind=settings.auth_kind, headers=settings.headers,
            sample=settings.dry_run_sample, logger=logger,
        ) if settings.dry_run else None
        self.scheduler = Scheduler(self, settings.max_concurrency * WINDOW_FACTOR)
        self._positions: dict[str, int] = {}
        self.records_seen = 0
        self.records_ignored = 0
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._state_emitted_at = time.monotonic()
        self.waiting = Waiting()
        self.progress = Progress(self, settings.progress_interval)

    def take_record(self) -> bool:
        """Count a RECORD read; False once it is past ``record_limit`` (it is ignored)."""
        limit = self.settings.record_limit
        if limit is None:
            return True
        self.records_seen += 1
        if self.records_seen > limit:
            self.records_ignored += 1
            return False
        return True

    def next_position(self, stream: str) -> int:
        """The 1-based position of the next record of ``stream`` (across schema changes)."""
        position = self._positions.get(stream, 0) + 1
        self._positions[stream] = position
        return position

    def show_dry_run(self, call: Call) -> None:
        """Dry run: show ``call`` instead of sending it (and its response record)."""
        assert self.dry_run is not None
        self.dry_run.show(call)
        if self.output.emit_responses:
            self.output.response(Result(call=call, outcome=Outcome.DRY_RUN,
                                        url=self.settings.base_url + call.path), dry_run=True)
        self.tracker.settle([u.seq for u in call.units])

    def emit_state(self) -> None:
        """Write the newest state whose records are all delivered.

        Never in a dry run, nor with ``record_limit`` (the records after the limit were not
        delivered, so no state may claim them).
        """
        if self.dry_run is None and self.settings.record_limit is None:
            self.output.state(self.tracker.safe_state())

    def maybe_emit_state(self) -> None:
        """Emit safe state at most every ``STATE_INTERVAL`` seconds (called as calls are
        answered and by the scheduler's ticker, so a quiet input still gets it)."""
        now = time.monotonic()
        if now - self._state_emitted_at >= STATE_INTERVAL:
            self._state_emitted_at = now
            self.emit_state()

    def secrets(self) -> list[str]:
        """Every form of the credentials that must never be printed."""
        s = self.settings
        return sorted(secret_forms(s.secret, s.email if s.auth_kind == "basic" else None))

    def fail(self, message: str) -> None:
        """Record the first permanent failure and stop starting requests."""
        with self._lock:
            if self.failure is None:
                self.failure = message
        self.client.stop.set()

    def raise_if_failed(self) -> None:
        """Raise ``TargetFailure`` once a failure was recorded."""
        if self.failure is not None:
            raise TargetFailure(self.failure)

    def reject(self, sink: GorgiasSink, exc: RecordError, record: dict) -> None:
        """A record that cannot become a request: report it, then fail or go on."""
        result = Result(call=sink.failed_call(exc, record), outcome=Outcome.FAILED,
                        url=self.settings.base_url + sink.settings.path, note=str(exc))
        result.error = {"msg": str(exc),
                        "data": {exc.field: [exc.problem]} if exc.field else None}
        self.output.response(result)
        if sink.settings.on_error == OnError.CONTINUE:
            self.logger.warning("Skipped %s", exc)
            self.summary.add(sink.stream_name, failed=1)
            self.dead_letters.write(stream=sink.stream_name, position=exc.position,
                                    record=record, status=None, error=result.error,
                                    attempts=0, reason=str(exc))
            return
        self.fail(str(exc))
        raise TargetFailure(str(exc))

    def finish(self, sink: GorgiasSink, result: Result) -> None:
        """Account for one answered call (runs in an HTTP worker thread)."""
        if result.outcome == Outcome.NOT_SENT:
            return
        self.output.response(result)
        units = result.call.units
        seqs = [u.seq for u in units]
        if result.ok:
            if result.note:
                quiet = result.sync_outcome in (SyncOutcome.SKIPPED, SyncOutcome.MERGED)
                log = self.logger.info if quiet else self.logger.warning
                log("Stream '%s', record %s: %s", sink.stream_name,
                    ", ".join(map(str, result.call.positions)), result.note)
            self.summary.add(sink.stream_name, delivered=len(units), outcome=result.sync_outcome)
            self.tracker.settle(seqs)
            self.maybe_emit_state()
            return
        message = result.describe()
        if sink.settings.on_error == OnError.CONTINUE and not result.fatal:
            self.logger.error("Failed (on_error=continue, going on): %s", message)
            self.summary.add(sink.stream_name, failed=len(units))
            for unit in units:
                body = None if unit.body is None else from_json(unit.body)
                self.dead_letters.write(stream=sink.stream_name, position=unit.position,
                                        record=body, status=result.status_code,
                                        error=result.error, attempts=result.attempts,
                                        reason=message)
            self.tracker.settle(seqs)
            self.maybe_emit_state()
            return
        self.summary.add(sink.stream_name, failed=len(units))
        self.fail(message)
