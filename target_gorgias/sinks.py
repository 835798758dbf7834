"""The sink: records of one stream become calls, sent when the SDK drains the batch."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_gorgias.client import Result, unverifiable_warning
from target_gorgias.custom_fields import CUSTOM_FIELD_TEMPLATES
from target_gorgias.request_builder import Call, RecordError, RequestBuilder, Unit
from target_gorgias.validation import FastValidator

if t.TYPE_CHECKING:
    from target_gorgias.run import Run
    from target_gorgias.target import TargetGorgias


def intent_note(intent: str | None) -> str:
    """How a stream's ``message_intent`` reads in the log and the dry run."""
    if intent == "import":
        return ("message_intent import: messages keep or get sent_datetime, Gorgias "
                "delivers nothing")
    if intent == "send":
        return ("message_intent send: agent messages without sent_datetime ARE delivered "
                "by Gorgias (e-mails go out)")
    return ""


class GorgiasSink(BatchSink):
    """Sends each record of one stream to its Gorgias endpoint (alone or in batches)."""

    def __init__(self, target: TargetGorgias, stream_name: str, schema: dict,
                 key_properties: t.Sequence[str] | None) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.run: Run = target.run
        settings = self.run.settings.stream(stream_name)
        assert settings is not None  # the target checked it before making this sink
        self.settings = settings
        self.builder = RequestBuilder(stream_name, settings, key_properties or [],
                                      self.run.settings.max_body_bytes,
                                      preflight=self.run.settings.preflight)
        self._rejected = False
        intent = intent_note(settings.message_intent)
        props = schema.get("properties") if isinstance(schema, dict) else None
        warning = unverifiable_warning(
            stream_name, settings.endpoint_id, settings.method, settings.mode,
            settings.lookup.keys if settings.lookup else None, settings.batch.enabled,
            None if settings.unflatten_separator or not isinstance(props, dict) else set(props))
        if warning and not self.run.dry_run:
            self.logger.warning("%s", warning)
        self.logger.info(
            "Stream '%s' -> %s %s (%s%s%s)", stream_name, settings.method, settings.path,
            settings.endpoint_id if settings.endpoint_id != "manual" else "manual config",
            f", batches of {settings.batch.size}" if settings.batch.enabled else "",
            f", {intent}" if intent else "",
        )
        if self.run.dry_run is not None and intent:
            self.run.dry_run.notes[stream_name] = intent

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """The SDK's validator behind the schema compiled by fastjsonschema (same verdicts)."""
        slow = super().get_validator()
        if slow is None:
            return None
        checker = None
        if self.validate_field_string_format:
            checker = getattr(getattr(slow, "validator", None), "format_checker", None)
            if checker is None:  # formats asked for, but no checker to ask: jsonschema only
                return slow
        fast = FastValidator(self.schema, slow, checker)
        if fast.reason:
            self.logger.info("Stream '%s' is validated by jsonschema only: %s",
                             self.stream_name, fast.reason)
        return fast

    def _validate_and_parse(self, record: dict) -> dict:
        """Validate against the stream schema; a bad record is reported like any other.

        The SDK's own version logs a traceback and a message with no field; this one names
        stream, record and field, and follows ``on_error``.
        """
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                cause = exc.__cause__
                path = list(getattr(cause, "absolute_path", []) or [])
                fld = ".".join(str(p) for p in path) or None
                problem = getattr(cause, "message", None) or str(exc)
                position = self.run.next_position(self.stream_name)
                self._rejected = True
                self.run.reject(self, RecordError(
                    self.stream_name, position,
                    f"does not match the stream's schema: {problem}", fld), record)
                return record
        self._parse_timestamps_in_record(record=record, schema=self.schema,
                                         treatment=self.datetime_error_treatment)
        return record

    def _singer_validate_message(self, record: dict) -> None:
        """Key-property check, skipped for a record already rejected (it is not sent)."""
        if not self._rejected:
            super()._singer_validate_message(record)

    def process_record(self, record: dict, context: dict) -> None:
        """Turn the record into a unit now (so bad records fail at once); send it at drain."""
        if self._rejected:  # failed validation and was reported (on_error: continue)
            self._rejected = False
            return
        position = self.run.next_position(self.stream_name)
        seq = self.run.current_seq
        try:
            unit = self.builder.unit(record, seq, position)
        except RecordError as exc:
            self.run.reject(self, exc, record)
            return
        if unit.problems:
            if self.run.dry_run is not None:  # flag it, show it, go on: the preview
                self.run.dry_run.flag(self.stream_name, unit)
            else:  # Gorgias would answer 400: no request, on_error decides
                self.run.reject(self, unit.error(self.stream_name), record)
                return
        self.run.tracker.add_unit(seq)
        context.setdefault("units", []).append(unit)

    def process_batch(self, context: dict) -> None:
        """Send every call of this batch; wait for all; fail if the policy says so."""
        units: list[Unit] = context.pop("units", [])
        if not units:
            return
        calls = list(self.builder.calls(units))
        if self.run.dry_run is not None:
            show, output = self.run.dry_run.show, self.run.output
            for call in calls:
                show(call)
                if output.emit_responses:
                    output.response(Result(call=call, outcome="dry_run",
                                           url=self.run.settings.base_url + call.path),
                                    dry_run=True)
            self.run.tracker.settle([u.seq for u in units])
            return
        handler = self.run.syncer.send if self.settings.mode != "create" else None
        if self.settings.endpoint_id in CUSTOM_FIELD_TEMPLATES:
            handler = self.run.custom_fields.send  # values go out with the field's type
        self.run.waiting.add(len(calls))
        self.run.client.send_all(calls, self._done,
                                 self.run.waiting.track(handler or self.run.client.send))
        self.run.raise_if_failed()

    def _done(self, result: Result) -> None:
        """Runs in the HTTP worker thread as soon as a call is answered."""
        self.run.finish(self, result)

    def failed_call(self, exc: RecordError, record: dict) -> Call:
        """A stand-in call for a record that never became a request (for reporting)."""
        s = self.settings
        keys = {k: record.get(k) for k in self.key_properties}
        unit = Unit(self.run.current_seq, exc.position, s.path, None, keys)
        return Call(self.stream_name, s.endpoint_id, s.method, s.path, s.headers, None, [unit])
