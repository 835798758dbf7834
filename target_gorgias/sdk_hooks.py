"""Every override of, and call into, a private Singer SDK method, in one place.

The SDK's ``Target._process_record_message`` validates a record, then hands it to
``Sink.process_record`` and drains a sink once ``batch_size_rows`` records piled up. This
target delivers each record as it arrives instead, so it replaces that one method with
``StreamingTarget._process_record_message``: the record's whole journey, stage by stage,
with what each stage needs (sequence number, stream position, validation verdict) passed
along as values, never through fields set by one callback and read by the next.

Each private name used here is checked by ``tests/test_sdk_hooks.py``: an SDK upgrade that
renames one, changes its signature or its behaviour fails that test loudly.
"""

from __future__ import annotations

import copy
import typing as t

from singer_sdk.exceptions import ConfigValidationError, InvalidInputLine
from singer_sdk.target_base import Target

from target_gorgias.settings import MELTANO_TEST_STREAM

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.sinks import Sink

    from target_gorgias.run import Run
    from target_gorgias.sinks import GorgiasSink

#: The SDK's private names this module relies on, by owner (checked by the tests).
PRIVATE_TARGET_METHODS = ("_process_record_message", "_process_state_message",
                          "_write_state_message", "_assert_sink_exists", "_validate_config",
                          "_handle_termination", "_get_about_info")
PRIVATE_SINK_METHODS = ("_get_context", "_add_sdc_metadata_to_record",
                        "_remove_sdc_metadata_from_record", "_parse_timestamps_in_record",
                        "_singer_validate_message", "_after_process_record")


class StreamingTarget(Target):
    """A ``Target`` whose records go to their sink's ``deliver`` as soon as they are read."""

    run: Run

    def _process_record_message(self, message_dict: dict) -> None:
        """One RECORD: number it, map it, then let its sink validate and deliver it."""
        stream_name = message_dict["stream"]
        if stream_name == MELTANO_TEST_STREAM:
            super()._process_record_message(message_dict)
            return
        raw = message_dict.get("record")
        if not isinstance(raw, dict):
            kind = "missing" if raw is None else f"a JSON {type(raw).__name__}, not an object"
            raise InvalidInputLine(f"{self._where()}: the RECORD's 'record' is {kind}")
        if not self.run.take_record():  # past record_limit
            return
        seq = self.run.tracker.begin_record()
        if stream_name not in self.mapper.stream_maps:
            self._assert_sink_exists(stream_name)
        for stream_map in self.mapper.stream_maps[stream_name]:
            record = stream_map.transform(copy.copy(raw))
            if record is None:  # filtered out by a stream map
                continue
            self._assert_sink_exists(stream_map.stream_alias)
            sink = self.get_sink(stream_map.stream_alias, record=record)
            read_record(t.cast("GorgiasSink", sink), record, message_dict, seq)

    def _process_state_message(self, message_dict: dict) -> None:
        """A STATE covers every record read before it (emitted once they are settled)."""
        super()._process_state_message(message_dict)
        if "value" in message_dict:
            self.run.tracker.add_state(message_dict["value"])

    def _write_state_message(self, state: dict) -> None:
        """Emit the newest state whose records were all delivered (never in a dry run)."""
        self.run.emit_state()

    def process_endofpipe(self) -> None:
        """End of input: send what waits in open batches, wait for every answer, then let
        the SDK finish its sinks (their drains have nothing left to send)."""
        self.run.scheduler.finish()
        super().process_endofpipe()

    def _where(self) -> str:
        """Where the reader is (overridden by the target)."""
        return "input"

    # -- start-up, signals and --about: the SDK's private hooks, each to a public one --------

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's config check; its errors pass through ``clean_config_error``."""
        try:
            return super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            raise self.clean_config_error(exc) from None

    def clean_config_error(self, exc: ConfigValidationError) -> ConfigValidationError:
        """The error to raise for the SDK's config errors (overridden by the target)."""
        return exc

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """The SDK's SIGTERM/SIGINT handler: ``on_signal`` decides."""
        self.on_signal(signum)

    def on_signal(self, signum: int) -> None:
        """SIGTERM/SIGINT arrived (overridden by the target)."""
        super()._handle_termination(signum, None)

    @classmethod
    def _get_about_info(cls) -> t.Any:
        """The SDK's ``--about`` data, passed through ``about_info``."""
        return cls.about_info(super()._get_about_info())

    @classmethod
    def about_info(cls, sdk_info: t.Any) -> t.Any:
        """``--about`` data to show (overridden by the target)."""
        return sdk_info


def read_record(sink: GorgiasSink, record: dict, message: dict, seq: int) -> None:
    """The sink-side journey of one record: metadata, validation, timestamps, preprocess,
    key check, then ``deliver`` (or ``reject`` when it does not match the schema)."""
    context = sink._get_context(record)
    if sink.include_sdc_metadata_properties:
        sink._add_sdc_metadata_to_record(record, message, context)
    else:
        sink._remove_sdc_metadata_from_record(record)
    position = sink.run.next_position(sink.stream_name)
    error = sink.check(record, position)
    sink.tally_record_read()
    sink.record_counter_metric.increment()
    if error is not None:
        sink.run.reject(sink, error, record)
        return
    sink._parse_timestamps_in_record(
        record=record, schema=sink.schema, treatment=sink.datetime_error_treatment)
    record = sink.preprocess_record(record, context)
    sink._singer_validate_message(record)
    sink.deliver(record, seq, position)
    sink._after_process_record(context)


def validator_of(sink: Sink) -> t.Any:
    """The validator the SDK built for ``sink`` from ``get_validator`` (or None)."""
    return sink._validator
