"""Everything the target writes to stdout: state lines, and the optional response stream.

With ``emit_responses`` off, stdout carries only bare state lines (what Meltano stores).
With it on, stdout is a full Singer stream: a SCHEMA for the response stream, one RECORD
per API call, and proper ``STATE`` messages. One writer per process, behind a lock.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from target_gorgias.client import Result
from target_gorgias.request_builder import jsonable, to_json

_NULLABLE_STR = {"type": ["string", "null"]}
#: A JSON document kept whole: typed loaders (target-duckdb, the pipelinewise family, SDK SQL
#: targets) store an object/array property as one JSON column; an untyped ``{}`` is dropped.
_JSON_DOC: dict[str, Any] = {"type": ["object", "array", "null"]}
#: Gorgias' ``error.data``: field -> messages, a list, or a plain message.
_ERROR_DATA: dict[str, Any] = {"type": ["object", "array", "string", "null"]}

#: The JSON Schema of one response record.
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string"},
        "stream": {"type": "string"},
        "endpoint": {"type": "string"},
        "method": {"type": ["string", "null"]},
        "url": {"type": "string"},
        "status_code": {"type": ["integer", "null"]},
        "ok": {"type": "boolean"},
        "resource_id": {"type": ["integer", "string", "null"]},
        "response": _JSON_DOC,
        "error": {
            "type": ["object", "null"],
            "properties": {
                "msg": _NULLABLE_STR,
                "data": _ERROR_DATA,
            },
        },
        "record_count": {"type": "integer"},
        "source_keys": {"type": "array", "items": {"type": "object"}},
        "attempts": {"type": "integer"},
        "uncertain_resends": {"type": "integer"},
        "duration_ms": {"type": "integer"},
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "dry_run": {"type": "boolean"},
        "outcome": {"type": ["string", "null"],
                    "enum": ["created", "updated", "unchanged", "skipped", None]},
        "request": {
            "type": ["object", "null"],
            "properties": {"method": {"type": "string"}, "url": {"type": "string"},
                           "body": _JSON_DOC},
        },
    },
    "required": ["request_id", "stream", "endpoint", "method", "url", "ok", "record_count"],
}


def _document(body: Any) -> Any:
    """Gorgias' answer as the ``response`` column holds it: an object, an array or null.

    A bare JSON scalar (no Gorgias endpoint answers one) is kept as ``{"value": ...}``.
    """
    if body is None or isinstance(body, (dict, list)):
        return body
    return {"value": body}


class Output:
    """The one stdout writer of the process."""

    def __init__(self, *, emit_responses: bool, stream: str, include_request: bool,
                 out: IO[str] | None = None) -> None:
        self.emit_responses = emit_responses
        self.stream = stream
        self.include_request = include_request
        self._out = out
        self._lock = threading.Lock()
        self._last_state: str | None = None
        #: Applied to every response record line (removes credentials an answer echoes).
        self.redact: Callable[[str], str] = str

    def _write(self, line: str) -> None:
        out = self._out or sys.stdout
        with self._lock:
            out.write(line + "\n")
            out.flush()

    def response(self, result: Result, *, dry_run: bool = False) -> None:
        """One RECORD for one API call (only when the response stream is on)."""
        if not self.emit_responses:
            return
        call = result.call
        record: dict[str, Any] = {
            "request_id": result.request_id,
            "stream": call.stream,
            "endpoint": call.endpoint_id,
            "method": result.method,
            "url": result.url,
            "status_code": result.status_code,
            "ok": result.ok,
            "resource_id": result.resource_id,
            "response": _document(result.body),
            "error": result.error or ({"msg": result.note, "data": None}
                                      if not result.ok and result.note else None),
            "record_count": len(call.units),
            "source_keys": [u.source_key for u in call.units],
            "attempts": result.attempts,
            "uncertain_resends": result.uncertain_resends,
            "duration_ms": result.duration_ms,
            "sent_at": result.sent_at or None,
            "dry_run": dry_run,
            "outcome": result.sync_outcome,
        }
        if self.include_request or dry_run:
            record["request"] = {"method": call.method, "url": result.url,
                                 "body": call.body_object()}
        line = to_json({
            "type": "RECORD", "stream": self.stream, "record": jsonable(record),
            "time_extracted": dt.datetime.now(dt.timezone.utc).isoformat(),
        })
        self._write(self.redact(line))

    def start(self) -> None:
        """Write the response SCHEMA up front, so even an empty run declares the stream."""
        if self.emit_responses:
            self._write(to_json({"type": "SCHEMA", "stream": self.stream,
                                 "schema": RESPONSE_SCHEMA, "key_properties": ["request_id"]}))

    def state(self, value: Any) -> None:
        """Emit state (bare for Meltano, or a STATE message in a full Singer stream)."""
        if value is None:
            return
        text = to_json(value)
        line = to_json({"type": "STATE", "value": value}) if self.emit_responses else text
        out = self._out or sys.stdout
        with self._lock:
            if text == self._last_state:
                return
            self._last_state = text
            out.write(line + "\n")
            out.flush()
