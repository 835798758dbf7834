"""Unit tests of small parts: the stdout writer and the wording of failed calls.

The end-to-end tests drive these through the CLI; here each rule is pinned on its own, so a
regression names the part that broke. (The pacer's unit tests, with an injected clock, are in
test_shared_bucket.py; the secret filter's in test_config_guarantees.py.)
"""

from __future__ import annotations

import io
import json
import threading
from decimal import Decimal

import jsonschema
import pytest

from target_gorgias.client import Result, parse_error
from target_gorgias.request_builder import Call, Unit
from target_gorgias.responses import RESPONSE_SCHEMA, Output


def call(method: str = "POST", endpoint: str = "create_customer", positions: tuple[int, ...] = (3,),
         body: bytes | None = b'{"email":"a@example.com"}') -> Call:
    units = [Unit(seq=p, position=p, path="/api/customers", body=body,
                  source_key={"id": p}) for p in positions]
    return Call("customers", endpoint, method, "/api/customers", {}, body, units)


# -- the stdout writer ---------------------------------------------------------------------

def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_state_is_bare_without_the_response_stream_and_never_repeated():
    out = io.StringIO()
    writer = Output(emit_responses=False, stream="r", include_request=False, out=out)
    writer.start()  # no SCHEMA: stdout holds state only (Meltano stores every line)
    writer.response(Result(call=call(), outcome="delivered", status_code=201))
    writer.state({"bookmarks": {"a": 1}})
    writer.state({"bookmarks": {"a": 1}})  # same state again: not written twice
    writer.state(None)  # nothing safe yet: nothing written
    writer.state({"bookmarks": {"a": 2}})
    assert lines(out) == [{"bookmarks": {"a": 1}}, {"bookmarks": {"a": 2}}]


def test_response_stream_is_a_full_singer_stream_with_typed_records():
    out = io.StringIO()
    writer = Output(emit_responses=True, stream="gorgias_responses", include_request=True,
                    out=out)
    writer.start()
    ok = Result(call=call(), outcome="delivered", status_code=201,
                body={"id": 7, "meta": {"ltv": Decimal("12345678901234567.25")}}, attempts=1)
    failed = Result(call=call(positions=(4,)), outcome="failed", status_code=400,
                    error={"msg": "Failed to create customer", "data": {"email": ["bad"]}})
    writer.response(ok)
    writer.response(failed)
    writer.state({"done": 1})
    schema_msg, first, second, state_msg = lines(out)
    assert schema_msg["type"] == "SCHEMA" and schema_msg["key_properties"] == ["request_id"]
    assert [first["type"], second["type"], state_msg] == [
        "RECORD", "RECORD", {"type": "STATE", "value": {"done": 1}}]
    for msg in (first, second):
        jsonschema.validate(msg["record"], RESPONSE_SCHEMA)
    assert first["record"]["resource_id"] == 7 and first["record"]["ok"] is True
    assert first["record"]["request"]["body"] == {"email": "a@example.com"}
    assert second["record"]["error"]["data"] == {"email": ["bad"]}
    assert second["record"]["source_keys"] == [{"id": 4}]
    # The exact number Gorgias answered, not a float's approximation of it.
    assert '"ltv":12345678901234567.25' in out.getvalue()


def test_every_response_property_has_a_type():
    """Typed loaders (target-duckdb, pipelinewise) drop properties without a type."""
    untyped = [name for name, prop in RESPONSE_SCHEMA["properties"].items()
               if "type" not in prop and "anyOf" not in prop]
    assert untyped == []


def test_redaction_hook_applies_to_every_response_line():
    out = io.StringIO()
    writer = Output(emit_responses=True, stream="r", include_request=False, out=out)
    writer.redact = lambda text: text.replace("s3cret", "<redacted>")
    writer.response(Result(call=call(), outcome="failed", status_code=400,
                           error={"msg": "bad key s3cret", "data": None}))
    assert "s3cret" not in out.getvalue() and "<redacted>" in out.getvalue()


def test_lines_from_many_threads_never_interleave():
    out = io.StringIO()
    writer = Output(emit_responses=True, stream="r", include_request=False, out=out)

    def write(n: int) -> None:
        for i in range(50):
            writer.response(Result(call=call(positions=(n * 100 + i,)), outcome="delivered",
                                   status_code=201, body={"id": n * 100 + i}))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    records = lines(out)  # every line parses: no two writes interleaved
    assert sorted(r["record"]["resource_id"] for r in records) == sorted(
        n * 100 + i for n in range(8) for i in range(50))


# -- the wording of failed calls ------------------------------------------------------------

def test_parse_error_reads_gorgias_error_shape_only():
    assert parse_error({"error": {"msg": "Failed", "data": {"email": ["x"]}}}) == {
        "msg": "Failed", "data": {"email": ["x"]}}
    assert parse_error({"error": "text"}) is None
    assert parse_error(["not", "an", "object"]) is None
    assert parse_error(None) is None


@pytest.mark.parametrize(("status", "hint"), [
    (401, "check email/api_key or access_token"),
    (403, "lacks permission"),
    (409, '"mode": "upsert" with "match_on"'),
])
def test_describe_names_what_to_do(status, hint):
    res = Result(call=call(), outcome="failed", status_code=status,
                 url="https://acme.gorgias.com/api/customers")
    text = res.describe()
    assert text.startswith("stream 'customers', record 3: POST https://acme.gorgias.com/api/"
                           f"customers -> HTTP {status}")
    assert hint in text


def test_describe_names_fields_records_and_the_lookup_method():
    res = Result(call=call(positions=(1, 2, 3)), outcome="failed", status_code=400,
                 url="u", error={"msg": "Failed to create customer",
                                 "data": {"email": ["Not a valid email address."]}})
    assert res.describe() == ("stream 'customers', records 1-3: POST u -> HTTP 400: Failed to "
                              "create customer [email: Not a valid email address.]")
    lookup = Result(call=call(), outcome="failed", status_code=401, url="u?email=a",
                    method="GET")
    assert lookup.describe().startswith("stream 'customers', record 3: GET u?email=a -> HTTP 401")
    no_answer = Result(call=call(), outcome="failed", url="u", attempts=6,
                       note="no answer within 30s")
    assert no_answer.describe() == ("stream 'customers', record 3: POST u failed after 6 "
                                    "attempt(s): no answer within 30s")


def test_a_409_on_a_template_without_lookup_suggests_leaving_it_out():
    res = Result(call=call(endpoint="create_macro"), outcome="failed", status_code=409, url="u")
    assert "leave it out of the input" in res.describe()


# -- the errors module -----------------------------------------------------------------------

def test_errors_are_built_on_the_sdk_exception_classes():
    from singer_sdk import exceptions as sdk

    from target_gorgias.errors import (
        ConfigError,
        RecordError,
        StoreError,
        TargetFailure,
        Terminated,
    )

    assert issubclass(ConfigError, sdk.ConfigurationError)
    assert issubclass(RecordError, sdk.SkippableSyncError)
    assert issubclass(TargetFailure, sdk.FatalSyncError)
    assert issubclass(Terminated, TargetFailure)
    assert issubclass(StoreError, sdk.SingerSDKError)
    err = RecordError("orders", 3, "is missing", "customer.email")
    assert str(err) == "stream 'orders', record 3, field 'customer.email': is missing"
    assert ConfigError(["a: bad", "b: worse"]).errors == ["a: bad", "b: worse"]
    assert Terminated(15).signum == 15 and "SIGTERM" in str(Terminated(15))


def test_outcomes_and_modes_read_as_their_text_everywhere():
    import simplejson

    from target_gorgias.outcomes import MessageIntent, Mode, OnError, Outcome, SyncOutcome
    from target_gorgias.settings import load_settings

    assert Outcome.DELIVERED == "delivered" and f"{SyncOutcome.MERGED}" == "merged"
    assert simplejson.dumps([Outcome.NOT_SENT, Mode.UPSERT]) == '["not_sent", "upsert"]'
    settings = load_settings({"api_url": "http://127.0.0.1:1", "email": "a@b.c", "api_key": "k",
                              "on_error": "continue", "streams": {
                                  "c": {"endpoint": "create_customer", "mode": "upsert"},
                                  "t": {"endpoint": "create_ticket"}}})
    assert settings.on_error is OnError.CONTINUE
    assert settings.streams["c"].mode is Mode.UPSERT
    assert settings.streams["t"].mode is Mode.CREATE
    assert settings.streams["t"].message_intent is MessageIntent.IMPORT


def test_each_setting_is_declared_once_and_its_default_used():
    from target_gorgias.config_schema import CONFIG_SCHEMA, DEFAULTS, STREAM_KEYS
    from target_gorgias.settings import load_settings
    from target_gorgias.target import TargetGorgias

    assert TargetGorgias.config_jsonschema is CONFIG_SCHEMA
    settings = load_settings({"api_url": "http://127.0.0.1:1", "email": "a@b.c",
                              "api_key": "k", "streams": {}})
    for name in ("timeout", "rate_limit_window", "max_concurrency", "max_retries",
                 "max_body_bytes", "max_retry_after", "progress_interval",
                 "lookup_grace_seconds", "dry_run_sample", "response_stream"):
        assert getattr(settings, name) == DEFAULTS[name], name
    # A stream key the schema does not declare is refused, naming the declared ones.
    with pytest.raises(Exception, match=r"streams\.s\.endpont: unknown setting") as info:
        load_settings({"api_url": "http://127.0.0.1:1", "email": "a@b.c", "api_key": "k",
                       "streams": {"s": {"endpont": "create_tag"}}})
    assert all(key in str(info.value) for key in STREAM_KEYS)
