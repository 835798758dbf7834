"""The sink: validates each record of one stream and turns it into a unit for the scheduler."""

from __future__ import annotations

import typing as t
from collections.abc import Callable

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_gorgias.client import Result, unverifiable_warning
from target_gorgias.custom_fields import CUSTOM_FIELD_TEMPLATES
from target_gorgias.errors import RecordError
from target_gorgias.outcomes import MessageIntent, Mode
from target_gorgias.request_builder import Call, RequestBuilder, Unit
from target_gorgias.sdk_hooks import validator_of
from target_gorgias.validation import FastValidator

if t.TYPE_CHECKING:
    from target_gorgias.run import Run
    from target_gorgias.target import TargetGorgias


def intent_note(intent: str | None) -> str:
    """How a stream's ``message_intent`` reads in the log and the dry run."""
    if intent == MessageIntent.IMPORT:
        return ("message_intent import: messages keep or get sent_datetime, Gorgias "
                "delivers nothing")
    if intent == MessageIntent.SEND:
        return ("message_intent send: agent messages without sent_datetime ARE delivered "
                "by Gorgias (e-mails go out)")
    return ""


class GorgiasSink(BatchSink):
    """Turns each record of one stream into a unit for its Gorgias endpoint."""

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

    def check(self, record: dict, position: int) -> RecordError | None:
        """Validate against the stream schema: None, or the error naming stream, record and
        field (reported like any other bad record, following ``on_error``)."""
        validator = validator_of(self)
        if validator is None:
            return None
        try:
            validator.validate(record)
        except InvalidRecord as exc:
            cause = exc.__cause__
            path = list(getattr(cause, "absolute_path", []) or [])
            fld = ".".join(str(p) for p in path) or None
            problem = getattr(cause, "message", None) or str(exc)
            return RecordError(self.stream_name, position,
                               f"does not match the stream's schema: {problem}", fld)
        return None

    def deliver(self, record: dict, seq: int, position: int) -> None:
        """Turn the record into a unit (a bad one is reported now) and schedule it."""
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
        self.run.scheduler.submit(self, unit)

    def sender(self) -> Callable[[Call], Result]:
        """How this stream's calls are sent: with the custom field's type, through a sync
        mode (look up, then write), or as they are."""
        if self.settings.endpoint_id in CUSTOM_FIELD_TEMPLATES:
            return self.run.custom_fields.send  # values go out with the field's type
        if self.settings.mode != Mode.CREATE:
            return self.run.syncer.send
        return self.run.client.send

    def process_record(self, record: dict, context: dict) -> None:
        """Unused: ``sdk_hooks.read_record`` hands records to ``deliver`` with their number."""
        raise NotImplementedError("records go through sdk_hooks.read_record")

    def process_batch(self, context: dict) -> None:
        """Nothing to do: the scheduler sent every record as it arrived."""

    def failed_call(self, exc: RecordError, record: dict) -> Call:
        """A stand-in call for a record that never became a request (for reporting)."""
        s = self.settings
        keys = {k: record.get(k) for k in self.key_properties}
        unit = Unit(-1, exc.position, s.path, None, keys)  # never tracked: settles at once
        return Call(self.stream_name, s.endpoint_id, s.method, s.path, s.headers, None, [unit])
