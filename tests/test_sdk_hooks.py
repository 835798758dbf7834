"""What ``target_gorgias.sdk_hooks`` relies on in the Singer SDK: fails loudly on an upgrade
that renames, re-signs or changes one of the private methods it calls or replaces."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import textwrap

import pytest
from singer_sdk.exceptions import InvalidRecord, MissingKeyPropertiesError
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_gorgias import sdk_hooks
from target_gorgias.sdk_hooks import PRIVATE_SINK_METHODS, PRIVATE_TARGET_METHODS, validator_of
from target_gorgias.target import TargetGorgias

SIGNATURES = {
    (Target, "_process_record_message"): ["self", "message_dict"],
    (Target, "_process_state_message"): ["self", "message_dict"],
    (Target, "_write_state_message"): ["self", "state"],
    (Target, "_assert_sink_exists"): ["self", "stream_name"],
    (Target, "process_endofpipe"): ["self"],
    (Target, "_validate_config"): ["self", "raise_errors"],
    (Target, "_handle_termination"): ["self", "signum", "frame"],
    (Target, "_get_about_info"): [],
    (Sink, "_get_context"): ["self", "record"],
    (Sink, "_add_sdc_metadata_to_record"): ["self", "record", "message", "context"],
    (Sink, "_remove_sdc_metadata_from_record"): ["self", "record"],
    (Sink, "_parse_timestamps_in_record"): ["self", "record", "schema", "treatment"],
    (Sink, "_singer_validate_message"): ["self", "record"],
    (Sink, "_after_process_record"): ["self", "context"],
    (Sink, "preprocess_record"): ["self", "record", "context"],
    (Sink, "tally_record_read"): ["self", "count"],
}


def _calls_on(func: object, name: str) -> list[str]:
    """Attributes used on the variable ``name`` in ``func``'s source, in order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))  # type: ignore[arg-type]
    return [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == name]


def test_every_private_name_is_listed_with_its_signature():
    listed = {(Target, n) for n in PRIVATE_TARGET_METHODS} | {
        (Sink, n) for n in PRIVATE_SINK_METHODS}
    assert listed <= set(SIGNATURES)
    for (owner, name), params in SIGNATURES.items():
        method = getattr(owner, name, None)
        assert callable(method), f"{owner.__name__}.{name} is gone"
        assert list(inspect.signature(method).parameters) == params, f"{owner.__name__}.{name}"


def test_sdk_record_journey_is_the_one_we_replace():
    # StreamingTarget._process_record_message replaces the SDK's; it must do the same steps.
    # A step added (or dropped) by an SDK upgrade changes this list: review sdk_hooks then.
    steps = _calls_on(Target._process_record_message, "sink")
    assert sorted(set(steps)) == sorted({
        "_get_context", "include_sdc_metadata_properties", "_add_sdc_metadata_to_record",
        "_remove_sdc_metadata_from_record", "_validate_and_parse", "preprocess_record",
        "_singer_validate_message", "tally_record_read", "process_record",
        "record_counter_metric", "_after_process_record", "is_full", "stream_name",
        "current_size"})
    ours = _calls_on(sdk_hooks.read_record, "sink")
    for step in ("_get_context", "_add_sdc_metadata_to_record", "preprocess_record",
                 "_singer_validate_message", "tally_record_read", "record_counter_metric",
                 "_after_process_record"):
        assert step in ours
    # Our validate-then-parse is the SDK's _validate_and_parse, split so a bad record is
    # reported (not only logged): it must still be just those two steps.
    assert set(_calls_on(Sink._validate_and_parse, "self")) == {
        "_validator", "logger", "fail_on_record_validation_exception",
        "_parse_timestamps_in_record", "schema", "datetime_error_treatment"}


@pytest.fixture
def sink(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = TargetGorgias(config={
        "api_url": "http://127.0.0.1:9", "email": "a@example.com", "api_key": "k",
        "streams": {"customers": {"endpoint": "create_customer"}}, "dry_run": True})
    schema = {"type": "object", "properties": {
        "email": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}
    target._process_schema_message({"type": "SCHEMA", "stream": "customers",
                                    "schema": schema, "key_properties": ["email"]})
    yield target.get_sink("customers")
    target.run.scheduler.close()
    target.run.client.close()


def test_private_sink_methods_behave_as_relied_on(sink):
    context = sink._get_context({"email": "x"})
    assert isinstance(context, dict)
    record = {"email": "x", "at": "2024-01-02T03:04:05Z", "_sdc_sequence": 1,
              "_sdc_extracted_at": "2024-01-01T00:00:00Z"}
    sink._remove_sdc_metadata_from_record(record)
    assert "_sdc_sequence" not in record and "_sdc_extracted_at" not in record
    sink._add_sdc_metadata_to_record(record, {"time_extracted": "2024-01-01"}, context)
    assert record["_sdc_extracted_at"] == "2024-01-01"
    sink._remove_sdc_metadata_from_record(record)
    sink._parse_timestamps_in_record(record=record, schema=sink.schema,
                                     treatment=sink.datetime_error_treatment)
    assert record["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    sink._singer_validate_message(record)
    with pytest.raises(MissingKeyPropertiesError):
        sink._singer_validate_message({"at": "x"})
    sink._after_process_record(context)


def test_validator_of_is_the_sinks_validator(sink):
    validator = validator_of(sink)
    assert validator is not None
    validator.validate({"email": "x"})
    with pytest.raises(InvalidRecord):
        validator.validate({"email": 5})
    assert sink.check({"email": 5}, 3) is not None
    assert "record 3, field 'email'" in str(sink.check({"email": 5}, 3))
    assert sink.check({"email": "x"}, 4) is None
