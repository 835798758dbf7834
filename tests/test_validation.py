"""Compiled validation gives the SDK's jsonschema verdicts, for SaaS and database schemas.

Schemas and records are made as JSON text and parsed the way the reader parses input
(numbers with a fraction become ``Decimal``), then judged by the SDK's own validator
(``JSONSchemaValidator``: Draft 2020-12, formats off unless asked) and by ours.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.sinks.core import JSONSchemaValidator

from benchmarks.gen import CUSTOMER_DB_SCHEMA, TAG_SCHEMA, TICKET_SCHEMA, customer_db, ticket
from target_gorgias.validation import FastValidator, compile_schema
from tests.support import config, record, run_target

KEYS = ["id", "n", "s", "when", "kind", "tags", "meta", "x"]


def _raw_decimals(value: Any) -> Any:
    """Decimals marked so that ``as_read`` can write them as JSON numbers, digit for digit."""
    if isinstance(value, Decimal):
        return f"\x00\x01dec:{value}\x01\x00"
    if isinstance(value, list):
        return [_raw_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: _raw_decimals(v) for k, v in value.items()}
    return value


def as_read(value: Any) -> Any:
    """``value`` as it comes out of the reader: through JSON text, fractions as Decimal."""
    text = re.sub(r'"\\u0000\\u0001dec:([^"]*)\\u0001\\u0000"', r"\1",
                  json.dumps(_raw_decimals(value)))
    return json.loads(text, parse_float=Decimal)


def verdict(validator: Any, instance: Any) -> tuple[Any, ...]:
    """What a validator says: ok, or the error text, message and path it gives."""
    try:
        validator.validate(instance)
    except InvalidRecord as exc:
        cause = exc.__cause__
        return ("invalid", str(exc), getattr(cause, "message", None),
                list(getattr(cause, "absolute_path", [])))
    except Exception as exc:  # jsonschema itself can raise (e.g. Decimal % too large)
        return ("error", type(exc).__name__)
    return ("ok",)


_VALIDATORS: dict[tuple[str, bool], tuple[JSONSchemaValidator, FastValidator] | None] = {}


def validators(schema: Any, formats: bool) -> tuple[JSONSchemaValidator, FastValidator] | None:
    """The SDK's validator and ours for a schema (None if the SDK refuses it), made once."""
    key = (repr(schema), formats)
    if key not in _VALIDATORS:
        try:
            sdk = JSONSchemaValidator(schema, validate_formats=formats)
        except InvalidJSONSchema:
            _VALIDATORS[key] = None
        else:
            checker = sdk.validator.format_checker if formats else None
            _VALIDATORS[key] = (sdk, FastValidator(schema, sdk, checker))
    return _VALIDATORS[key]


def same_verdicts(schema: Any, instance: Any, formats: bool = False) -> bool:
    """Assert ours equals the SDK's; return whether the compiled check was used."""
    pair = validators(schema, formats)
    if pair is None:
        assume(False)  # the SDK refuses the schema before any record is seen
    assert pair is not None
    sdk, ours = pair
    expected = verdict(sdk, instance)
    assert verdict(ours, instance) == expected, (schema, instance)
    if ours.check is not None:
        try:
            ours.check(instance)
        except Exception:
            return True
        assert expected == ("ok",), ("compiled check accepted", schema, instance)
    return ours.check is not None


# --- strategies: values as the reader makes them, schemas from every translated keyword ----
numbers = st.one_of(
    st.integers(-1000, 1000),
    st.decimals(min_value=-1000, max_value=1000, places=2),
    st.decimals(min_value=-10, max_value=10, places=4),
    st.sampled_from([Decimal("0.1"), Decimal("1.0"), Decimal("1E+2"), Decimal("-0.0"),
                     Decimal("12345678901234567890123456789.01"), 2**53 + 1]),
)
strings = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01", "not a date", "a@b.co", "abc\n",
                     "", "é", "ab", "ba1"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                max_size=4),
    max_leaves=10,
)
type_names = st.sampled_from(["string", "integer", "number", "boolean", "null", "object",
                              "array"])
positive = st.sampled_from([1, 2, 3, Decimal("0.01"), Decimal("0.5"), Decimal("0.1"),
                            Decimal("2.5"), Decimal("0.0001")])
patterns = st.sampled_from(["^a", "b", "^[a-z]+", "\\d", "^a$", "[$]", "é"])


def leaf_schemas() -> st.SearchStrategy[dict[str, Any]]:
    """One keyword (or a few annotations) at a time."""
    return st.one_of(
        st.builds(lambda t: {"type": t}, type_names | st.lists(type_names, min_size=1,
                                                               max_size=3, unique=True)),
        st.builds(lambda k, n: {k: n}, st.sampled_from(["minimum", "maximum", "exclusiveMinimum",
                                                        "exclusiveMaximum"]), numbers),
        st.builds(lambda n: {"multipleOf": n}, positive),
        st.builds(lambda k, n: {k: n}, st.sampled_from(["minLength", "maxLength", "minItems",
                                                        "maxItems", "minProperties",
                                                        "maxProperties"]), st.integers(0, 4)),
        st.builds(lambda p: {"pattern": p}, patterns),
        st.builds(lambda e: {"enum": e}, st.lists(json_values, min_size=1, max_size=4)),
        st.builds(lambda c: {"const": c}, json_values),
        st.builds(lambda f: {"format": f}, st.sampled_from(["date-time", "date", "email",
                                                            "uuid", "made-up"])),
        st.just({"title": "t", "description": "d", "default": 3, "x-sql-datatype": "numeric",
                 "$comment": "c", "examples": [1]}),
        st.just({"uniqueItems": True}),  # not translated: jsonschema alone
        st.just({"prefixItems": [{"type": "integer"}]}),
        st.booleans(),
    )


def combine(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Schemas made of schemas: the keywords that hold subschemas, and keyword mixes."""
    return st.one_of(
        st.builds(lambda props, req: {"type": "object", "properties": props, "required": req},
                  st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
                  st.lists(st.sampled_from(KEYS), max_size=2, unique=True)),
        st.builds(lambda i: {"type": ["array", "null"], "items": i}, inner),
        st.builds(lambda k, opts: {k: opts}, st.sampled_from(["anyOf", "allOf", "oneOf"]),
                  st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda s: {"not": s}, inner),
        st.builds(lambda a, p: {"properties": p, "additionalProperties": a},
                  inner, st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)),
        st.builds(lambda pat, s: {"patternProperties": {pat: s}}, patterns, inner),
        st.builds(lambda a, b: {**a, **b} if isinstance(a, dict) and isinstance(b, dict) else a,
                  inner, inner),
    )


schemas = st.recursive(leaf_schemas(), combine, max_leaves=8)

#: Database-style schemas (what SQL taps emit), each with values near their edges.
DB_SCHEMAS: list[dict[str, Any]] = [
    CUSTOMER_DB_SCHEMA,
    {"type": "object", "properties": {
        "amount": {"type": ["number", "null"], "multipleOf": 0.01, "minimum": -999.99,
                   "maximum": 999.99},
        "rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5,
                 "multipleOf": 0.001},
        "qty": {"type": "integer", "minimum": 0, "maximum": 32767, "multipleOf": 1},
        "code": {"type": "string", "minLength": 2, "maxLength": 3},
        "status": {"anyOf": [{"enum": ["open", "closed", 1, True]}, {"type": "null"}]},
        "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "sku": {"type": "string", "maxLength": 4}, "price": {"type": "number",
                                                                  "multipleOf": 0.05}},
            "required": ["sku"], "additionalProperties": False}},
    }, "required": ["qty"]},
]
db_values = st.fixed_dictionaries({}, optional={
    "amount": st.none() | st.decimals(min_value=-1001, max_value=1001, places=3)
    | st.integers(-1001, 1001),
    "rate": st.decimals(min_value=-1, max_value=1, places=4) | st.sampled_from([0, 1, True]),
    "qty": st.integers(-2, 40000) | st.sampled_from([Decimal("1.0"), Decimal("2.5"), "3"]),
    "code": strings,
    "status": st.sampled_from(["open", "closed", 1, True, False, Decimal("1.0"), 0, None, "x"]),
    "at": st.none() | strings | st.integers(),
    "lines": st.lists(st.fixed_dictionaries({"sku": strings}, optional={
        "price": st.decimals(min_value=0, max_value=20, places=3), "extra": st.booleans()}),
        max_size=3),
})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(schema=schemas, value=json_values, formats=st.booleans())
def test_random_schemas_same_verdicts_as_jsonschema(schema, value, formats):
    same_verdicts(as_read(schema), as_read(value), formats)


@settings(max_examples=400, deadline=None)
@given(value=db_values, formats=st.booleans())
def test_database_schema_same_verdicts(value, formats):
    assert same_verdicts(as_read(DB_SCHEMAS[1]), as_read(value), formats)


@settings(max_examples=200, deadline=None)
@given(i=st.integers(0, 10**6), changes=st.dictionaries(
    st.sampled_from(["id", "external_id", "email", "language", "note"]), json_values,
    max_size=2), meta=st.dictionaries(st.sampled_from(
        ["lifetime_value", "discount_rate", "orders_count", "created_at", "segments"]),
        json_values, max_size=2))
def test_generated_rows_with_damage_same_verdicts(i, changes, meta):
    row = customer_db(i)
    row.update(changes)
    if isinstance(row.get("meta"), dict):
        row["meta"].update(meta)
    assert same_verdicts(as_read(CUSTOMER_DB_SCHEMA), as_read(row))


def test_saas_and_database_schemas_are_compiled():
    for schema in (TICKET_SCHEMA, TAG_SCHEMA, *DB_SCHEMAS):
        assert compile_schema(as_read(schema)).reason is None
    for schema, make in ((CUSTOMER_DB_SCHEMA, customer_db), (TICKET_SCHEMA, ticket)):
        check = compile_schema(as_read(schema)).check
        assert check is not None
        for i in range(50):
            check(as_read(make(i)))  # generated rows pass without asking jsonschema


@pytest.mark.parametrize(("schema", "value", "valid"), [
    # 0.1 in the schema is Decimal('0.1'); as a float literal it would reject Decimal('0.1').
    ({"minimum": 0.1}, 0.1, True),
    ({"maximum": 0.1}, 0.1, True),
    ({"exclusiveMaximum": 0.3}, 0.3, False),
    ({"multipleOf": 0.01}, 129.95, True),
    ({"multipleOf": 0.01}, 129.955, False),
    ({"multipleOf": 0.01}, 12995, True),
    ({"multipleOf": 1}, Decimal("1.000000000000000000000000000001"), False),
    ({"multipleOf": 0.1}, Decimal("0.30000000000000000000000000000000001"), False),
    ({"type": "integer"}, 1.0, False),  # Decimal('1.0') is not an integer for jsonschema
    ({"type": "integer"}, True, False),
    ({"enum": [1]}, True, False),
    ({"enum": [1.0]}, True, False),
    ({"enum": [1]}, 1.0, True),
    ({"const": {"a": [1, "x"]}}, {"a": [1, "x"]}, True),
    ({"maxLength": 2}, "éé", True),
    ({"pattern": "^a$"}, "a\n", True),
])
def test_decimal_and_edge_values(schema, value, valid):
    schema, value = as_read(schema), as_read(value)
    assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid
    same_verdicts(schema, value)


def test_decimal_jsonschema_cannot_divide_raises_the_same():
    """jsonschema's ``%`` raises for a quotient beyond Decimal's precision; so do we."""
    schema = as_read({"multipleOf": 2})
    sdk = JSONSchemaValidator(schema)
    ours = FastValidator(schema, sdk)
    with pytest.raises(InvalidOperation):
        ours.validate(Decimal("1E+40"))
    assert verdict(ours, Decimal("1E+40")) == verdict(sdk, Decimal("1E+40"))


def test_untranslated_keywords_fall_back_to_jsonschema():
    for schema, bad in (({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {
            "type": "string"}}}, {"a": 1}),
                        ({"type": "array", "uniqueItems": True}, [1, 1]),
                        ({"prefixItems": [{"type": "integer"}]}, ["x"]),
                        ({"enum": [1.5]}, True)):
        compiled = compile_schema(as_read(schema))
        assert compiled.check is None and compiled.reason
        sdk = JSONSchemaValidator(as_read(schema))
        with pytest.raises(InvalidRecord):
            FastValidator(as_read(schema), sdk).validate(as_read(bad))


def test_hostile_names_run_no_code_and_keep_verdicts(tmp_path):
    """Schemas become Python code: names built to break out of it run nothing."""
    flag = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(flag)!r}).touch()"
    names = [f'a"); {payload}; ("', f"a'); {payload}; ('", f"x\n{payload}\n", "{data}",
             "a}}b{{", "\\", 'a\\"b', "é", "__class__", "data__x", ""]
    for name in names:
        for schema in ({"properties": {name: {"type": "integer"}}, "required": [name]},
                       {"patternProperties": {name: {"type": "integer"}}},
                       {"properties": {"x": {"enum": [name]}}},
                       {"properties": {"x": {"const": name}}},
                       {"properties": {"x": {"type": "object", "properties": {
                           name: {"maxLength": 1}}}}}):
            if validators(schema, False) is None:
                continue  # the SDK refuses it (e.g. not a regex): no record is ever judged
            for rec in ({name: 1}, {name: "s"}, {"x": {name: "ss"}}, {"x": name}, {}):
                try:
                    same_verdicts(schema, rec)
                except Exception as exc:  # pragma: no cover - reported with the schema
                    raise AssertionError((name, schema, rec)) from exc
    assert not flag.exists()


def test_const_is_compiled():
    schema = as_read({"properties": {"v": {"const": {"a": [1, "x", None]}}},
                      "allOf": [{"required": ["v"]}]})
    assert compile_schema(schema).check is not None
    for value in ({"v": {"a": [1, "x", None]}}, {"v": {"a": [True, "x", None]}}, {"v": 1}, {}):
        same_verdicts(schema, value)


def test_formats_only_when_asked():
    schema = as_read({"type": "object", "properties": {"at": {"type": "string",
                                                              "format": "date"}}})
    bad = {"at": "2024-13-45"}
    assert verdict(FastValidator(schema, JSONSchemaValidator(schema)), bad) == ("ok",)
    sdk = JSONSchemaValidator(schema, validate_formats=True)
    ours = FastValidator(schema, sdk, sdk.validator.format_checker)
    assert ours.check is not None
    assert verdict(ours, bad) == verdict(sdk, bad) != ("ok",)
    assert verdict(ours, {"at": "2024-02-03"}) == ("ok",)


def test_defaults_are_not_filled_in():
    schema = as_read({"type": "object", "properties": {"a": {"type": "string",
                                                             "default": "x"}}})
    rec: dict[str, Any] = {}
    FastValidator(schema, JSONSchemaValidator(schema)).validate(rec)
    assert rec == {}


# --- end to end: the CLI on a database-style stream ---------------------------------------
def test_database_stream_end_to_end(fake_gorgias, tmp_path):
    """Valid rows reach Gorgias; a row over a column's length is named by stream, record and
    field, exactly as before, and is not sent."""
    schema = {"type": "SCHEMA", "stream": "customers", "schema": CUSTOMER_DB_SCHEMA,
              "key_properties": ["id"]}
    rows = [customer_db(i) for i in range(1, 4)]
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer",
                                                       "exclude_attributes": ["id"]}})
    res = run_target(cfg, [schema, *(record("customers", r) for r in rows)], tmp_path)
    assert res.returncode == 0, res.stderr
    bodies = [r["body"] for r in fake_gorgias.requests if r["method"] == "POST"]
    assert sorted(b["external_id"] for b in bodies) == ["crm-1", "crm-2", "crm-3"]
    assert {str(b["meta"]["lifetime_value"]) for b in bodies} == {"1.37", "2.74", "4.11"}

    fake_gorgias.reset()
    bad = customer_db(9)
    bad["meta"]["lifetime_value"] = 12.345  # numeric(10,2) has two decimals
    res = run_target(cfg, [schema, record("customers", customer_db(8)),
                           record("customers", bad)], tmp_path)
    assert res.returncode == 1
    assert ("stream 'customers', record 2, field 'meta.lifetime_value': does not match the "
            "stream's schema: Decimal('12.345') is not a multiple of 0.01") in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert all((r["body"] or {}).get("external_id") != "crm-9" for r in fake_gorgias.requests)
