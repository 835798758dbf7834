"""Dry run: build every request, send none, show the first few in full.

The sample goes to the log (stderr), never stdout, so a dry run under Meltano stores no
state. The Authorization header is always shown redacted.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

from target_gorgias.request_builder import Call, Unit, to_json


class DryRun:
    """Prints the first ``sample`` calls and counts the rest per stream. Thread-safe."""

    def __init__(self, *, base_url: str, auth_kind: str, headers: Mapping[str, str], sample: int,
                 logger: logging.Logger) -> None:
        self.base_url = base_url
        self.auth_shown = "Bearer <redacted>" if auth_kind == "bearer" else "Basic <redacted>"
        self.headers = dict(headers)
        self.sample = sample
        self.logger = logger
        self.counts: Counter[str] = Counter()
        self.records: Counter[str] = Counter()
        self._shown = 0
        self._lock = threading.Lock()
        #: Per stream: a line shown with its requests (the message_intent choice).
        self.notes: dict[str, str] = {}
        #: Records the preflight flagged, per stream.
        self.flagged: Counter[str] = Counter()

    def flag(self, stream: str, unit: Unit) -> None:
        """Report a record Gorgias would reject, one line per field."""
        with self._lock:
            self.flagged[stream] += 1
        for fld, problem in unit.problems:
            self.logger.warning("PREFLIGHT: stream '%s', record %d, field '%s': %s", stream,
                                unit.position, fld, problem)

    def show(self, call: Call) -> None:
        """Count ``call``; print it in full if it is among the first ``sample``."""
        with self._lock:
            self.counts[call.stream] += 1
            self.records[call.stream] += len(call.units)
            if self._shown >= self.sample:
                return
            self._shown += 1
            number = self._shown
        headers = {"Authorization": self.auth_shown, "Accept": "application/json",
                   **self.headers, **call.headers}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        body = call.body_object()
        positions = call.positions
        records = (f"record {positions[0]}" if len(positions) == 1
                   else f"records {positions[0]}..{positions[-1]} ({len(positions)})")
        text = to_json(
            {"method": call.method, "url": self.base_url + call.path, "headers": headers,
             **({"body": body} if call.body is not None else {})},
            indent=2,
        )
        note = self.notes.get(call.stream)
        self.logger.info("DRY RUN request %d (stream '%s', %s%s):\n%s", number, call.stream,
                         records, f"; {note}" if note else "", text)

    def summary(self) -> str:
        """``DRY RUN: built N requests for M records, sent none (...)``."""
        total = sum(self.counts.values())
        shown = min(total, self.sample)
        per = ", ".join(f"{s}: {self.counts[s]} requests / {self.records[s]} records"
                        for s in sorted(self.counts))
        flagged = sum(self.flagged.values())
        preflight = "" if not flagged else (
            f"; PREFLIGHT: {flagged} records Gorgias would reject ("
            + ", ".join(f"{s}: {self.flagged[s]}" for s in sorted(self.flagged)) + ")")
        return (f"DRY RUN: built {total} requests for {sum(self.records.values())} records and "
                f"sent none; showed {shown}, {total - shown} more not shown"
                + (f" ({per})" if per else "") + preflight)
